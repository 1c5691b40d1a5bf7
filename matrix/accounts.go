package matrix

import (
	"context"
	"errors"
	"net/http"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// What the homeserver lets this appservice do to the accounts it manages, beyond the
// client-server API every homeserver has (checked against the sources):
//
//   - Signing a user's devices out works everywhere: POST /logout/all acting as the user
//     through the appservice (?user_id=).
//   - A session for a user: POST /login with m.login.application_service and the
//     as_token (Synapse; Dendrite since 0.13, clientapi/auth/login_application_service.go).
//   - Locking an account and telling whether an account is a homeserver admin need an
//     admin API the bot may call: Synapse's (/_synapse/admin/..., when the bot's account
//     is a server admin) or the spec's lock endpoint (v1.18, PUT
//     /_matrix/client/v1/admin/lock/{userId}, for server admins). Dendrite 0.13.8 has
//     neither: its admin API is /_dendrite/admin/... and refuses every appservice
//     caller (its appservice "device" is never an admin account), and it has no lock.

// ErrNoAdminAPI means the homeserver has no admin API the bot may use for this: it does
// not have one (Dendrite), or the bot is not a server admin (Synapse answers 403).
var ErrNoAdminAPI = errors.New("the homeserver has no admin API the bot may use")

// noAdminAPI reports whether a homeserver's answer means "no such API for this caller":
// an unknown endpoint (404, 405, M_UNRECOGNIZED) or not a server admin (403). A 404
// M_NOT_FOUND is the admin API answering about an unknown user, not its absence.
func noAdminAPI(err error) bool {
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		return false
	}
	if he.RespError != nil && he.RespError.ErrCode == mautrix.MNotFound.ErrCode {
		return false
	}
	switch he.Response.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusForbidden, http.StatusNotImplemented:
		return true
	}
	return he.RespError != nil && he.RespError.ErrCode == mautrix.MUnrecognized.ErrCode
}

// SignOutAll signs every device of the user out (their access tokens stop working),
// acting as the user through the appservice.
func SignOutAll(ctx context.Context, ms *db.MatrixSettings, hc *http.Client, uid id.UserID) error {
	user, err := Client(ms, hc, uid)
	if err != nil {
		return err
	}
	_, err = user.LogoutAll(ctx)
	return err
}

// SetLocked locks or unlocks the user's account through an admin API the bot may use:
// the spec's lock endpoint, else Synapse's user admin API (its "locked" flag, Synapse
// 1.93+). It returns ErrNoAdminAPI when the homeserver offers neither to the bot.
func SetLocked(ctx context.Context, ms *db.MatrixSettings, hc *http.Client, uid id.UserID, locked bool) error {
	bot, err := Client(ms, hc, "")
	if err != nil {
		return err
	}
	body := map[string]bool{"locked": locked}
	_, err = bot.MakeRequest(ctx, http.MethodPut, bot.BuildClientURL("v1", "admin", "lock", uid), body, nil)
	if err == nil || !noAdminAPI(err) {
		return err
	}
	_, err = bot.MakeRequest(ctx, http.MethodPut, bot.BuildURL(mautrix.SynapseAdminURLPath{"v2", "users", uid}), body, nil)
	if err != nil && noAdminAPI(err) {
		return ErrNoAdminAPI
	}
	return err
}

// IsServerAdmin asks the homeserver whether the account is a server admin (Synapse's
// GET /_synapse/admin/v1/users/{userId}/admin). It returns ErrNoAdminAPI when the
// homeserver does not let the bot tell.
func IsServerAdmin(ctx context.Context, ms *db.MatrixSettings, hc *http.Client, uid id.UserID) (bool, error) {
	bot, err := Client(ms, hc, "")
	if err != nil {
		return false, err
	}
	var resp struct {
		Admin bool `json:"admin"`
	}
	_, err = bot.MakeRequest(ctx, http.MethodGet, bot.BuildURL(mautrix.SynapseAdminURLPath{"v1", "users", uid, "admin"}), nil, &resp)
	switch {
	case errors.Is(err, mautrix.MNotFound):
		return false, nil // no such account: not an admin
	case err != nil && noAdminAPI(err):
		return false, ErrNoAdminAPI
	case err != nil:
		return false, err
	}
	return resp.Admin, nil
}

// Session is a Matrix session made for a user: what a client needs to act as them.
type Session struct {
	UserID      id.UserID
	DeviceID    id.DeviceID
	AccessToken string
}

// LoginAs makes a new session (a new device) for the user with the appservice login
// (m.login.application_service, authenticated by the as_token), so that a platform's
// web chat can act as the user without a password. deviceName names the device in
// the user's session list.
func LoginAs(ctx context.Context, ms *db.MatrixSettings, hc *http.Client, uid id.UserID, deviceName string) (*Session, error) {
	bot, err := Client(ms, hc, "")
	if err != nil {
		return nil, err
	}
	resp, err := bot.Login(ctx, &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypeAppservice,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: uid.String()},
		InitialDeviceDisplayName: deviceName,
	})
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.AccessToken == "" || resp.UserID != uid {
		return nil, errors.New("the homeserver's login answer has no session for " + uid.String())
	}
	return &Session{UserID: resp.UserID, DeviceID: resp.DeviceID, AccessToken: resp.AccessToken}, nil
}

// ErrAdminAccount refuses to link a homeserver admin account: acting for a server admin
// would hand this appservice (and anyone with a platform token for that user) the
// homeserver's keys.
var ErrAdminAccount = errors.New("it is a homeserver admin account, which is never linked")

// historicalLocalpart is the widest localpart a homeserver may still hold (spec:
// historical user IDs are printable ASCII but ":").
func historicalLocalpart(lp string) bool {
	if lp == "" {
		return false
	}
	for i := 0; i < len(lp); i++ {
		if c := lp[i]; c < 0x21 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// ParseLinkTarget checks a Matrix ID staff want to link to a user: a well-formed user ID
// on this homeserver's domain, not the bot's. The error is a sentence for the person who
// typed it.
func ParseLinkTarget(ms *db.MatrixSettings, s string) (id.UserID, error) {
	uid := id.UserID(s)
	lp, domain, err := uid.Parse()
	switch {
	case err != nil || !historicalLocalpart(lp) || len(s) > 255:
		return "", errors.New("enter a Matrix user ID such as @alice:" + ms.HomeserverDomain)
	case domain != ms.HomeserverDomain:
		return "", errors.New("only accounts on this homeserver (" + ms.HomeserverDomain + ") can be linked")
	case uid == ms.BotUserID():
		return "", errors.New("that is the appservice bot's own account")
	}
	return uid, nil
}

// CheckLinkable asks the homeserver whether uid may be linked: ErrAdminAccount for a
// server admin. told is false when the homeserver does not let the bot tell (no admin
// API for it, or the appservice is not set up); linking then goes ahead. Any other error
// is the homeserver's failure to answer: try again later.
func CheckLinkable(ctx context.Context, ms *db.MatrixSettings, hc *http.Client, uid id.UserID) (told bool, err error) {
	admin, err := IsServerAdmin(ctx, ms, hc, uid)
	switch {
	case errors.Is(err, ErrNoAdminAPI), errors.Is(err, ErrNotSetUp):
		return false, nil
	case err != nil:
		return false, err
	case admin:
		return true, ErrAdminAccount
	}
	return true, nil
}
