package setup

import (
	"errors"
	"testing"

	"matrixas/db"
	"matrixas/settings"
)

func TestPlanFor(t *testing.T) {
	empty := &db.MatrixSettings{SenderLocalpart: settings.SenderLocalpart.Default}
	configured := &db.MatrixSettings{
		HomeserverURL: "http://hs.internal:8008", HomeserverDomain: "example.org", RegistrationSecret: "s3cret",
		SenderLocalpart: "bridge-bot", AppserviceURL: "https://as.example.org",
	}
	full := Input{URL: "https://as.example.org/", HomeserverURL: "https://matrix.example.org/", HomeserverDomain: "example.org", RegistrationSecret: "secret"}
	tests := []struct {
		name        string
		in          Input
		ms          *db.MatrixSettings
		publicURL   string
		wantErrs    []string // fields with errors (Invalid)
		wantMissing string   // the *MissingError's message
		wantStore   map[string]string
		wantURL     string
		wantSender  string
	}{
		{name: "all given, nothing configured", in: full, ms: empty,
			wantStore:  map[string]string{settings.HomeserverURL.Key: "https://matrix.example.org", settings.HomeserverDomain.Key: "example.org", settings.RegistrationSecret.Key: "secret"},
			wantURL:    "https://as.example.org",
			wantSender: "waldur-bot"},
		{name: "nothing given, nothing configured", in: Input{}, ms: empty,
			wantMissing: "Matrix prerequisites missing: MATRIX_HOMESERVER_URL, MATRIX_HOMESERVER_DOMAIN, MATRIX_USER_REGISTRATION_SECRET"},
		{name: "only the secret missing", in: Input{HomeserverURL: "http://hs:8008", HomeserverDomain: "hs"}, ms: empty,
			wantMissing: "Matrix prerequisites missing: MATRIX_USER_REGISTRATION_SECRET"},
		{name: "url is optional: no url, no PUBLIC_URL", in: Input{HomeserverURL: "http://hs:8008", HomeserverDomain: "hs", RegistrationSecret: "x"}, ms: empty,
			wantStore: map[string]string{settings.HomeserverURL.Key: "http://hs:8008", settings.HomeserverDomain.Key: "hs", settings.RegistrationSecret.Key: "x"},
			wantURL:   "", wantSender: "waldur-bot"},
		{name: "url falls back to PUBLIC_URL", in: Input{HomeserverURL: "http://hs:8008", HomeserverDomain: "hs", RegistrationSecret: "x"}, ms: empty, publicURL: "http://as:8080",
			wantStore: map[string]string{settings.HomeserverURL.Key: "http://hs:8008", settings.HomeserverDomain.Key: "hs", settings.RegistrationSecret.Key: "x"},
			wantURL:   "http://as:8080", wantSender: "waldur-bot"},
		{name: "configured values are kept, not overwritten", in: Input{HomeserverURL: "http://other:8008", HomeserverDomain: "other.org"}, ms: configured,
			wantStore: map[string]string{}, wantURL: "https://as.example.org", wantSender: "bridge-bot"},
		{name: "public url stored when new", in: Input{HomeserverPublicURL: "https://chat.example.org"}, ms: configured,
			wantStore: map[string]string{settings.HomeserverPublicURL.Key: "https://chat.example.org"}, wantURL: "https://as.example.org", wantSender: "bridge-bot"},
		{name: "localpart regex refused", in: Input{SenderLocalpart: ".*"}, ms: configured, wantErrs: []string{"sender_localpart"}},
		{name: "localpart uppercase refused", in: Input{SenderLocalpart: "Bot"}, ms: configured, wantErrs: []string{"sender_localpart"}},
		{name: "localpart accepted", in: Input{SenderLocalpart: "my.bot=1/x_y-z"}, ms: configured, wantStore: map[string]string{}, wantURL: "https://as.example.org", wantSender: "my.bot=1/x_y-z"},
		{name: "bad urls (malformed values come before missing ones)", in: Input{URL: "ftp://as", HomeserverURL: "matrix.example.org", HomeserverPublicURL: "http://"}, ms: empty,
			wantErrs: []string{"url", "homeserver_url", "homeserver_public_url"}},
		{name: "bad domain", in: Input{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "exa mple.org", RegistrationSecret: "x"}, ms: empty,
			wantErrs: []string{"homeserver_domain"}},
		{name: "domain with port", in: Input{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "localhost:8448", RegistrationSecret: "x"}, ms: empty,
			wantStore: map[string]string{settings.HomeserverURL.Key: "http://hs", settings.HomeserverDomain.Key: "localhost:8448", settings.RegistrationSecret.Key: "x"},
			wantURL:   "http://as", wantSender: "waldur-bot"},
		{name: "domain with bad port", in: Input{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "localhost:99999", RegistrationSecret: "x"}, ms: empty,
			wantErrs: []string{"homeserver_domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanFor(tt.in, tt.ms, tt.publicURL)
			var errs Invalid
			var missing *MissingError
			switch {
			case tt.wantMissing != "":
				if !errors.As(err, &missing) || err.Error() != tt.wantMissing {
					t.Fatalf("PlanFor = %v, %v; want the missing error %q", plan, err, tt.wantMissing)
				}
				return
			case len(tt.wantErrs) > 0:
				if plan != nil || !errors.As(err, &errs) {
					t.Fatalf("want errors on %v, got %+v, %v", tt.wantErrs, plan, err)
				}
				for _, f := range tt.wantErrs {
					if len(errs[f]) == 0 {
						t.Errorf("no error for %s; errors: %v", f, errs)
					}
				}
				if len(errs) != len(tt.wantErrs) {
					t.Errorf("errors on %d fields, want %d: %v", len(errs), len(tt.wantErrs), errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if plan.URL != tt.wantURL || plan.SenderLocalpart != tt.wantSender {
				t.Errorf("plan url %q sender %q, want %q %q", plan.URL, plan.SenderLocalpart, tt.wantURL, tt.wantSender)
			}
			if len(plan.Store) != len(tt.wantStore) {
				t.Errorf("store %v, want %v", plan.Store, tt.wantStore)
			}
			for k, v := range tt.wantStore {
				if plan.Store[k] != v {
					t.Errorf("store[%s] = %q, want %q", k, plan.Store[k], v)
				}
			}
		})
	}
}
