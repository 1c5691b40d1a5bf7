package provision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/settings"
)

// accountsEnv is an appservice on a real Dendrite with one project room whose members
// the tests add.
type accountsEnv struct {
	*appservice
	project  string // the project's uuid
	roomUUID string // the room's uuid
}

// newAccountsEnv starts the appservice on Dendrite; homeserver, when not nil, puts
// something in front of Dendrite (given its URL) before any work starts.
func newAccountsEnv(t *testing.T, homeserver func(a *appservice) string) *accountsEnv {
	t.Helper()
	a := newAppservice(t, fastEnv)
	if homeserver != nil {
		if err := a.ts.Web.Settings().Set(context.Background(), map[string]string{settings.HomeserverURL.Key: homeserver(a)}); err != nil {
			t.Fatal(err)
		}
	}
	var p struct {
		UUID string `json:"uuid"`
	}
	a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": "Accounts"}, &p, http.StatusCreated)
	var r apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
	return &accountsEnv{appservice: a, project: p.UUID, roomUUID: r.UUID}
}

// member creates a platform user with a role in the project.
func (e *accountsEnv) member(t *testing.T, name, role string) apiUser {
	t.Helper()
	u := e.createUser(t, name)
	e.call(t, http.MethodPost, "/api/projects/"+e.project+"/members/", map[string]string{"user": u.UUID, "role": role}, nil, http.StatusCreated)
	return u
}

// profile reads a user's Matrix profile through the API.
func (e *accountsEnv) profile(t *testing.T, username string) apiAccount {
	t.Helper()
	var ps []apiAccount
	e.call(t, http.MethodGet, "/api/matrix-user-profiles/?search="+url.QueryEscape(username), nil, &ps, http.StatusOK)
	for _, p := range ps {
		if p.Username == username {
			return p
		}
	}
	t.Fatalf("no profile for %s", username)
	return apiAccount{}
}

type apiAccount struct {
	Username     string `json:"username"`
	MatrixUserID string `json:"matrix_user_id"`
	Provisioned  bool   `json:"provisioned"`
	LastError    string `json:"last_error"`
	Registration string `json:"registration"`
	SignedOut    bool   `json:"signed_out"`
	Locked       bool   `json:"locked"`
}

// token is an API token of the platform user.
func (e *accountsEnv) token(t *testing.T, u apiUser) string {
	t.Helper()
	du, err := e.ts.Store.UserByUUID(context.Background(), u.UUID)
	if err != nil {
		t.Fatal(err)
	}
	return e.ts.NewToken(t, du)
}

// roomID is the Matrix room ID, once the room is active with its members synced.
func (e *accountsEnv) roomID(t *testing.T) string {
	t.Helper()
	var r apiRoom
	waitFor(t, "room active", 60*time.Second, func() (bool, string) {
		r = e.room(t, e.roomUUID)
		return r.State == "active", r.State + " " + r.ErrorMessage
	})
	return r.RoomID
}

// membership is the user's membership in the room as the bot sees it ("" for none).
func membership(t *testing.T, bot *mautrix.Client, roomID, user string) event.Membership {
	t.Helper()
	var m event.MemberEventContent
	err := bot.StateEvent(context.Background(), id.RoomID(roomID), event.StateMember, user, &m)
	if errors.Is(err, mautrix.MNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("membership of %s: %v", user, err)
	}
	return m.Membership
}

// TestAccountsOnDendrite: on a real Dendrite, an account that existed before is refused
// with the fix named (and never acted for), and works once linked; a registration whose
// answer was lost is recognised as ours; a homeserver's refusal of a first registration
// does not let a later M_USER_IN_USE pass as ours.
func TestAccountsOnDendrite(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	// A proxy in front of Dendrite that can lose the answer to a registration (the
	// request reaches Dendrite; the connection drops before the answer) or refuse one.
	var proxy *registerFaults
	e := newAccountsEnv(t, func(a *appservice) string {
		proxy = newRegisterFaults(t, a.hs.URL, func(username string) error {
			_, _, err := a.hs.RegisterUser(context.Background(), username, "someone-elses-password-1")
			return err
		})
		return proxy.URL
	})
	ctx := context.Background()
	bot := e.bot(t, e.hs)

	// carol's ID is taken by an account someone made on the homeserver before.
	if _, _, err := e.hs.RegisterUser(ctx, "carol", "carols-own-password-1"); err != nil {
		t.Fatal(err)
	}
	proxy.lose("erin")   // erin's first registration is made, its answer lost
	proxy.refuse("gina") // gina's first registration is refused (429), then her ID is taken
	dave := e.member(t, "dave", "member")
	carol := e.member(t, "carol", "admin")
	e.member(t, "erin", "member")
	gina := e.member(t, "gina", "member")
	roomID := e.roomID(t)

	waitFor(t, "accounts settled", 60*time.Second, func() (bool, string) {
		c, er, g := e.profile(t, "carol"), e.profile(t, "erin"), e.profile(t, "gina")
		return c.Registration == "refused" && er.Provisioned && g.Registration == "refused",
			"carol " + c.Registration + ", erin " + er.Registration + " " + er.LastError + ", gina " + g.Registration + " " + g.LastError
	})
	waitFor(t, "dave and erin joined", 30*time.Second, func() (bool, string) {
		j := joined(t, bot, roomID)
		return sameStrings(j, []string{mxid("dave"), mxid("erin"), e.ms.BotUserID().String()}), strings.Join(j, ",")
	})

	t.Run("an existing account is refused, with the fix", func(t *testing.T) {
		p := e.profile(t, "carol")
		for _, want := range []string{"@carol:localhost already exists on the homeserver and was not created by this server",
			"matrixas link-matrix-account carol @carol:localhost", "/api/users/" + carol.UUID + "/link_matrix_account/"} {
			if !strings.Contains(p.LastError, want) {
				t.Errorf("carol's error %q lacks %q", p.LastError, want)
			}
		}
		if m := membership(t, bot, roomID, mxid("carol")); m != "" {
			t.Errorf("carol's account was invited or joined: %q", m)
		}
		if _, ok := powerUsers(t, bot, roomID)[mxid("carol")]; ok {
			t.Errorf("carol's account got a power level: %v", powerUsers(t, bot, roomID))
		}
		r := e.room(t, e.roomUUID)
		if r.State != "active" || r.ErrorMessage != "" {
			t.Errorf("the refused account made the room fail: %s %q", r.State, r.ErrorMessage)
		}
		// The user is told too, and the user's page shows it.
		resp, body := e.ts.Request(t, http.MethodGet, "/api/matrix/credentials/", e.token(t, carol), nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "link-matrix-account carol @carol:localhost") {
			t.Errorf("credentials for a refused account: %d %s", resp.StatusCode, body)
		}
		page, err := e.ts.Browser(t).Get(e.ts.URL + "/users/" + carol.UUID)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(html), "matrixas link-matrix-account carol @carol:localhost") || !strings.Contains(string(html), `data-testid="profile-registration"`) {
			t.Errorf("the user's page does not show the refusal and its fix")
		}
	})

	t.Run("a lost answer is our own account", func(t *testing.T) {
		if n := proxy.registers("erin"); n < 2 {
			t.Errorf("erin registered %d times; the lost answer should have been retried", n)
		}
		if p := e.profile(t, "erin"); p.Registration != "created" || p.LastError != "" {
			t.Errorf("erin: %+v", p)
		}
	})

	t.Run("a refused first registration does not make a later account ours", func(t *testing.T) {
		if n := proxy.registers("gina"); n < 2 {
			t.Errorf("gina registered %d times", n)
		}
		if p := e.profile(t, "gina"); !strings.Contains(p.LastError, "link-matrix-account gina") {
			t.Errorf("gina: %+v", p)
		}
	})

	t.Run("linking on purpose", func(t *testing.T) {
		// Another user's ID and the bot's are refused; carol's own is linked.
		e.call(t, http.MethodPost, "/api/users/"+gina.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": mxid("dave")}, nil, http.StatusConflict)
		e.call(t, http.MethodPost, "/api/users/"+gina.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": e.ms.BotUserID().String()}, nil, http.StatusBadRequest)
		e.call(t, http.MethodPost, "/api/users/"+dave.UUID+"/link_matrix_account/", map[string]string{"matrix_user_id": mxid("dave-other")}, nil, http.StatusConflict)
		var p apiAccount
		e.call(t, http.MethodPost, "/api/users/"+carol.UUID+"/link_matrix_account/", map[string]string{}, &p, http.StatusOK)
		if p.Registration != "linked" || p.MatrixUserID != mxid("carol") || p.LastError != "" {
			t.Errorf("after the link: %+v", p)
		}
		waitFor(t, "carol joined with her level", 30*time.Second, func() (bool, string) {
			pl := powerUsers(t, bot, roomID)
			m := membership(t, bot, roomID, mxid("carol"))
			return m == event.MembershipJoin && pl[mxid("carol")] == db.RolePowerLevel(db.RoleAdmin), string(m)
		})
		if name, err := e.as(t, e.hs, id.UserID(mxid("carol"))).GetOwnDisplayName(ctx); err != nil || name.DisplayName != "User carol" {
			t.Errorf("carol's display name: %v %v", name, err)
		}
		if p := e.profile(t, "carol"); !p.Provisioned || p.Registration != "linked" {
			t.Errorf("carol after provisioning: %+v", p)
		}
	})
}

// registerFaults is a proxy in front of a homeserver that loses or refuses the first
// registration of chosen usernames.
type registerFaults struct {
	URL string

	mu     sync.Mutex
	faults map[string]string // username -> "lose" | "refuse"
	count  map[string]int
}

// take makes an account with the username on the homeserver, as someone else would.
func newRegisterFaults(t *testing.T, upstream string, take func(username string) error) *registerFaults {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &registerFaults{faults: map[string]string{}, count: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/_matrix/client/v3/register" {
			proxy.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Username string `json:"username"`
		}
		json.Unmarshal(body, &req)
		f.mu.Lock()
		f.count[req.Username]++
		fault := f.faults[req.Username]
		delete(f.faults, req.Username)
		f.mu.Unlock()
		switch fault {
		case "lose":
			// Dendrite makes the account; the answer never reaches the worker.
			fwd, _ := http.NewRequest(http.MethodPost, upstream+r.URL.RequestURI(), bytes.NewReader(body))
			fwd.Header = r.Header.Clone()
			if resp, err := http.DefaultClient.Do(fwd); err == nil {
				resp.Body.Close()
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case "refuse":
			// Refused before it reaches Dendrite; before the retry, someone takes the ID.
			if err := take(req.Username); err != nil {
				t.Errorf("take %s: %v", req.Username, err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":10}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *registerFaults) lose(username string) {
	f.mu.Lock()
	f.faults[username] = "lose"
	f.mu.Unlock()
}
func (f *registerFaults) refuse(username string) {
	f.mu.Lock()
	f.faults[username] = "refuse"
	f.mu.Unlock()
}

func (f *registerFaults) registers(username string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[username]
}
