package matrix

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"matrixas/db"
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
				w.Write([]byte(`{}`)) // display name
			}))
			defer hs.Close()
			ms := &db.MatrixSettings{HomeserverURL: hs.URL, HomeserverDomain: "example.org", ASToken: "as", SenderLocalpart: "bot"}
			if got := ProvisionBot(context.Background(), ms, HTTPClient(time.Second, 2*time.Second)); got != tt.want {
				t.Errorf("ProvisionBot = %q, want %q", got, tt.want)
			}
		})
	}
	// Nothing listening: skipped, not failed.
	ms := &db.MatrixSettings{HomeserverURL: "http://127.0.0.1:9", HomeserverDomain: "example.org", ASToken: "as", SenderLocalpart: "bot"}
	if got := ProvisionBot(context.Background(), ms, HTTPClient(time.Second, 2*time.Second)); got != db.BotSkipped {
		t.Errorf("unreachable: %q, want skipped", got)
	}
}
