package setup

import (
	"errors"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/settings"
)

// FuzzPlanSetup: whatever the input, a plan only ever stores well-formed values, and a
// refusal names fields of the request.
func FuzzPlanFor(f *testing.F) {
	f.Add("https://as.example.org/", "waldur-bot", "http://hs:8008", "", "example.org", "secret")
	f.Add("", ".*", "ftp://x", "http://", "a b", "")
	f.Add("http://[::1]:80", "a/b=c", "https://h/", "https://p", "localhost:8448", "s")
	fields := map[string]bool{"url": true, "sender_localpart": true, "homeserver_url": true, "homeserver_public_url": true, "homeserver_domain": true, "user_registration_secret": true}
	f.Fuzz(func(t *testing.T, u, lp, hsURL, pubURL, domain, secret string) {
		in := Input{URL: u, SenderLocalpart: lp, HomeserverURL: hsURL, HomeserverPublicURL: pubURL, HomeserverDomain: domain, RegistrationSecret: secret}
		plan, err := PlanFor(in, &db.MatrixSettings{SenderLocalpart: settings.SenderLocalpart.Default}, "")
		var errs Invalid
		var missing *MissingError
		switch {
		case errors.As(err, &errs):
			for k := range errs {
				if !fields[k] {
					t.Fatalf("error keyed by unknown field %q", k)
				}
			}
			return
		case errors.As(err, &missing):
			if len(missing.Missing) == 0 || !strings.HasPrefix(err.Error(), "Matrix prerequisites missing: MATRIX_") {
				t.Fatalf("a missing error names nothing: %q", err)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
		if plan.URL != "" && settings.AppserviceURL.Validate(plan.URL) != nil {
			t.Fatalf("plan with an invalid url: %+v", plan)
		}
		if settings.SenderLocalpart.Validate(plan.SenderLocalpart) != nil {
			t.Fatalf("plan with an invalid localpart: %+v", plan)
		}
		for k, v := range plan.Store {
			switch k {
			case settings.HomeserverURL.Key, settings.HomeserverPublicURL.Key:
				if settings.HomeserverURL.Validate(v) != nil || strings.HasSuffix(v, "/") {
					t.Fatalf("stores bad %s %q", k, v)
				}
			case settings.HomeserverDomain.Key:
				if settings.HomeserverDomain.Validate(v) != nil {
					t.Fatalf("stores bad domain %q", v)
				}
			case settings.RegistrationSecret.Key:
				if v == "" {
					t.Fatal("stores an empty secret")
				}
			default:
				t.Fatalf("stores unexpected key %s", k)
			}
		}
	})
}
