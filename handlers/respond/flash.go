package respond

import (
	"net/http"

	"matrixas/auth"
	"matrixas/views"
)

const flashKey = "_flash"

// AddFlash queues a one-time message for the next page this session sees (the
// post/redirect/get step of a form that works without JavaScript).
func AddFlash(w http.ResponseWriter, r *http.Request, sessions *auth.SessionStore, kind views.FlashKind, msg string) {
	sess, err := sessions.Get(r, auth.SessionCookie)
	if err != nil {
		RecordError(r, err)
		return
	}
	sess.AddFlash(string(kind)+"\x00"+msg, flashKey)
	if err := sess.Save(r, w); err != nil {
		RecordError(r, err)
	}
}

// TakeFlashes returns the session's queued messages and clears them; none when the
// request has no session cookie.
func TakeFlashes(w http.ResponseWriter, r *http.Request, sessions *auth.SessionStore) []views.Flash {
	if _, err := r.Cookie(auth.SessionCookie); err != nil {
		return nil
	}
	sess, err := sessions.Get(r, auth.SessionCookie)
	if err != nil {
		RecordError(r, err)
		return nil
	}
	queued := sess.Flashes(flashKey)
	if len(queued) == 0 {
		return nil
	}
	var out []views.Flash
	for _, f := range queued {
		s, _ := f.(string)
		kind, msg := views.FlashInfo, s
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				kind, msg = views.FlashKind(s[:i]), s[i+1:]
				break
			}
		}
		out = append(out, views.Flash{Kind: kind, Message: msg})
	}
	if err := sess.Save(r, w); err != nil {
		RecordError(r, err)
	}
	return out
}
