package matrix

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/settings"
)

// TestProvisionBotOutcomes drives the bot step against fake homeservers.
func TestProvisionBotOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		register func(w http.ResponseWriter)
		want     db.BotStatus
	}{
		{"registered", func(w http.ResponseWriter) { w.Write([]byte(`{"user_id":"@bot:example.org"}`)) }, "ok"},
		{"already there", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			w.Write([]byte(`{"errcode":"M_USER_IN_USE","error":"taken"}`))
		}, "ok"},
		{"reserved to the appservice", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			w.Write([]byte(`{"errcode":"M_EXCLUSIVE","error":"reserved"}`))
		}, "ok"},
		{"unknown token", func(w http.ResponseWriter) {
			w.WriteHeader(401)
			w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token abc"}`))
		}, "failed: M_UNKNOWN_TOKEN"},
		{"garbage 200", func(w http.ResponseWriter) { w.Write([]byte(`<html>proxy login</html>`)) }, "failed: unreadable answer (HTTP 200 OK)"},
		{"bare 502", func(w http.ResponseWriter) { w.WriteHeader(502) }, "failed: HTTP 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/register") {
					tt.register(w)
					return
				}
				w.WriteHeader(http.StatusNotFound) // no display name calls: it is best effort
				w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"no"}`))
			}))
			defer hs.Close()
			ms := &db.MatrixSettings{HomeserverURL: hs.URL, HomeserverDomain: "example.org", ASToken: "as", SenderLocalpart: "bot"}
			if got := ProvisionBot(context.Background(), ms, HTTPClient(time.Second, 2*time.Second)); got != tt.want {
				t.Errorf("ProvisionBot = %q, want %q", got, tt.want)
			}
		})
	}
	// Nothing listening: failed with the reason (the seed's answer), not skipped.
	ms := &db.MatrixSettings{HomeserverURL: "http://127.0.0.1:9", HomeserverDomain: "example.org", ASToken: "as", SenderLocalpart: "bot"}
	if got := ProvisionBot(context.Background(), ms, HTTPClient(time.Second, 2*time.Second)); !strings.HasPrefix(string(got), "failed: ") ||
		!strings.Contains(string(got), "connection refused") {
		t.Errorf("unreachable: %q, want failed: ...connection refused", got)
	}
	// No homeserver configured: nothing to try.
	if got := ProvisionBot(context.Background(), &db.MatrixSettings{SenderLocalpart: "bot"}, HTTPClient(time.Second, 2*time.Second)); got != db.BotSkipped {
		t.Errorf("not configured: %q, want skipped", got)
	}
}

// TestBotDisplayNameFollowsSiteName: the bot is named "<SITE_NAME> Bot" when it is
// provisioned, "Waldur Bot" by default, and a name already right is not set again (each
// change is a member event in every room of the bot).
func TestBotDisplayNameFollowsSiteName(t *testing.T) {
	for _, tc := range []struct{ site, current, want string }{
		{"", "", "Waldur Bot"},
		{"Acme Cloud", "waldur-bot", "Acme Cloud Bot"},
		{"Acme Cloud", "Acme Cloud Bot", ""}, // already right: no PUT
	} {
		t.Run(tc.site+"/"+tc.current, func(t *testing.T) {
			var mu sync.Mutex
			var put []string
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/register"):
					w.Write([]byte(`{"user_id":"@bot:example.org"}`))
				case strings.HasSuffix(r.URL.Path, "/displayname") && r.Method == http.MethodGet:
					json.NewEncoder(w).Encode(map[string]string{"displayname": tc.current})
				case strings.HasSuffix(r.URL.Path, "/displayname") && r.Method == http.MethodPut:
					var body struct {
						DisplayName string `json:"displayname"`
					}
					json.NewDecoder(r.Body).Decode(&body)
					mu.Lock()
					put = append(put, body.DisplayName)
					mu.Unlock()
					w.Write([]byte(`{}`))
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			defer hs.Close()
			store, err := db.Open(context.Background(), t.TempDir()+"/m.db")
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			fixed := map[string]string{settings.HomeserverURL.Key: hs.URL, settings.HomeserverDomain.Key: "example.org", settings.SiteName.Key: tc.site}
			st := db.NewSettings(store, fixed)
			if err := st.Set(context.Background(), map[string]string{settings.ASToken.Key: "as"}); err != nil {
				t.Fatal(err)
			}
			ms, err := st.Matrix(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := ProvisionBot(context.Background(), ms, HTTPClient(time.Second, 2*time.Second)); got != db.BotOK {
				t.Fatalf("ProvisionBot = %q", got)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tc.want == "" && len(put) != 0:
				t.Errorf("display name set to %q although it was already %q", put, tc.current)
			case tc.want != "" && (len(put) != 1 || put[0] != tc.want):
				t.Errorf("display names set: %q, want [%q]", put, tc.want)
			}
		})
	}
}
