package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"matrixas/diagnostics"
	"matrixas/handlers/api"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

const diagnosticsPath = "/api/admin/matrix/diagnostics/"

// TestDiagnosticsEndpoint runs the real diagnostics through the real router against a
// homeserver that knows other tokens and echoes whatever token it gets in its errors.
func TestDiagnosticsEndpoint(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/_matrix/client/versions" {
			w.Write([]byte(`{"versions":["v1.11"]}`))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"errcode": "M_UNKNOWN_TOKEN",
			"error": "Unknown token " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")})
	}))
	defer hs.Close()

	const (
		asToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		hsToken = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
		secret  = "very-secret-registration-value"
	)
	s := testserver.New(t)
	err := s.Web.Settings().Set(context.Background(), map[string]string{
		settings.HomeserverURL.Key: hs.URL, settings.HomeserverDomain.Key: "example.org",
		settings.RegistrationSecret.Key: secret, settings.ASToken.Key: asToken, settings.HSToken.Key: hsToken,
		settings.AppserviceURL.Key: "http://127.0.0.1:8080", settings.Enabled.Key: "true",
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"not staff", s.UserToken, http.StatusForbidden},
		{"staff", s.StaffToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.Request(t, http.MethodGet, diagnosticsPath, tt.token, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				var d map[string]any
				if json.Unmarshal(body, &d) != nil || d["detail"] == nil || len(d) != 1 {
					t.Errorf("error body is not {\"detail\": ...}: %s", body)
				}
				return
			}
			assertSeedShape(t, body)
			var rep diagnostics.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Error("ok with a homeserver that refuses the token")
			}
			if c := rep.Check(diagnostics.CheckBotWhoami); c == nil || c.OK || !strings.Contains(c.Detail, "M_UNKNOWN_TOKEN") {
				t.Errorf("bot_whoami = %+v, want a failure naming M_UNKNOWN_TOKEN", c)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}

	// A dashboard session works too (the page's htmx calls may use it).
	resp, err := s.Browser(t).Get(s.URL + diagnosticsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("staff session: status %d, want 200", resp.StatusCode)
	}

	// Nothing secret anywhere: not in the responses above, not in the log.
	_, body := s.Request(t, http.MethodGet, diagnosticsPath, s.StaffToken, nil)
	for _, sec := range []string{asToken, hsToken, secret} {
		if strings.Contains(string(body), sec) {
			t.Errorf("response contains a secret: %s", body)
		}
		if strings.Contains(s.Logs.String(), sec) {
			t.Errorf("log contains a secret:\n%s", s.Logs.String())
		}
	}
}

// assertSeedShape checks the body has exactly the seed's fields: ok and checks, each
// check name, label, ok and detail, plus hint on failing checks only.
func assertSeedShape(t *testing.T, body []byte) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	if got := sortedKeys(raw); strings.Join(got, ",") != "checks,ok" {
		t.Fatalf("top-level fields %v, want [checks ok]", got)
	}
	var checks []map[string]any
	if err := json.Unmarshal(raw["checks"], &checks); err != nil {
		t.Fatalf("checks is not a list of objects: %s", raw["checks"])
	}
	if len(checks) != len(diagnostics.AlwaysListed()) {
		t.Fatalf("%d checks, want %d", len(checks), len(diagnostics.AlwaysListed()))
	}
	for i, c := range checks {
		want := "detail,label,name,ok"
		if ok, _ := c["ok"].(bool); !ok {
			want = "detail,hint,label,name,ok"
		}
		if got := strings.Join(sortedKeys(c), ","); got != want {
			t.Errorf("check %d (%v) has fields %s, want %s", i, c["name"], got, want)
		}
		for _, k := range []string{"name", "label", "detail"} {
			if _, ok := c[k].(string); !ok {
				t.Errorf("check %d: %s is not a string: %v", i, k, c[k])
			}
		}
		if _, ok := c["ok"].(bool); !ok {
			t.Errorf("check %d: ok is not a boolean: %v", i, c["ok"])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fakeRunner stands in for the diagnostics.
type fakeRunner struct {
	rep *diagnostics.Report
	err error
}

func (f fakeRunner) Run(context.Context) (*diagnostics.Report, error) { return f.rep, f.err }

func TestDiagnosticsHandler(t *testing.T) {
	report := &diagnostics.Report{OK: false, Checks: []diagnostics.Check{
		{Name: "homeserver_configured", Label: "Homeserver URL configured", OK: true, Detail: "http://hs:8008"},
		{Name: "bot_whoami", Label: "Homeserver accepts the as_token", OK: false, Detail: "refused", Hint: "restart"},
	}}
	tests := []struct {
		name     string
		runner   fakeRunner
		status   int
		wantBody string
	}{
		{"report", fakeRunner{rep: report}, http.StatusOK,
			`{"ok":false,"checks":[{"name":"homeserver_configured","label":"Homeserver URL configured","ok":true,"detail":"http://hs:8008"},` +
				`{"name":"bot_whoami","label":"Homeserver accepts the as_token","ok":false,"detail":"refused","hint":"restart"}]}`},
		{"own database fails", fakeRunner{err: errors.New("db: read settings: disk I/O error")}, http.StatusInternalServerError,
			`{"detail":"Something went wrong on our side; it has been logged."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &api.Handler{Diag: tt.runner}
			rec := httptest.NewRecorder()
			h.Diagnostics(rec, httptest.NewRequest(http.MethodGet, diagnosticsPath, nil))
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body\n%s\nwant\n%s", got, tt.wantBody)
			}
		})
	}
}
