package handlers

import (
	"encoding/json"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/matrix"
)

// FuzzParseTransaction: any body either parses (and then every membership event it
// returns came from the body, and the count matches a plain decode of the list) or is
// refused with one of the two Matrix errcodes; it never panics.
func FuzzParseTransaction(f *testing.F) {
	for _, s := range []string{
		`{"events":[]}`,
		`{"events":[{"type":"m.room.member","event_id":"$1","room_id":"!r:x","state_key":"@a:x","content":{"membership":"join"}}]}`,
		`{"events":[{"type":"m.room.message","content":{"membership":5}}],"ephemeral":[]}`,
		`{"events":{}}`, `[]`, `{`, `null`, `{"events":[1,"x",null]}`, "{\"events\":[{\"type\":\"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, members, err := ParseTransaction(body)
		if err != nil {
			bad, ok := err.(errTxnBody)
			if !ok || (bad.code != "M_NOT_JSON" && bad.code != "M_BAD_JSON") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var plain struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &plain); err != nil {
			t.Fatalf("accepted a body that does not decode as a list: %v", err)
		}
		if len(plain.Events) != n {
			t.Fatalf("count %d, list has %d", n, len(plain.Events))
		}
		if len(members) > n {
			t.Fatalf("%d members out of %d events", len(members), n)
		}
		for _, m := range members {
			if m.StateKey == "" || m.RoomID == "" || m.EventID == "" {
				t.Fatalf("incomplete membership event %+v", m)
			}
		}
	})
}

// FuzzPlanSetup: whatever the input, a plan only ever stores well-formed values, and a
// refusal names fields of the request.
func FuzzPlanSetup(f *testing.F) {
	f.Add("https://as.example.org/", "waldur-bot", "http://hs:8008", "", "example.org", "secret")
	f.Add("", ".*", "ftp://x", "http://", "a b", "")
	f.Add("http://[::1]:80", "a/b=c", "https://h/", "https://p", "localhost:8448", "s")
	fields := map[string]bool{"url": true, "sender_localpart": true, "homeserver_url": true, "homeserver_public_url": true, "homeserver_domain": true, "user_registration_secret": true}
	f.Fuzz(func(t *testing.T, u, lp, hsURL, pubURL, domain, secret string) {
		in := SetupInput{URL: u, SenderLocalpart: lp, HomeserverURL: hsURL, HomeserverPublicURL: pubURL, HomeserverDomain: domain, RegistrationSecret: secret}
		plan, errs := PlanSetup(in, &db.MatrixSettings{SenderLocalpart: db.DefaultSenderLocalpart}, "")
		if errs != nil {
			for k := range errs {
				if !fields[k] {
					t.Fatalf("error keyed by unknown field %q", k)
				}
			}
			return
		}
		if matrix.ValidHTTPURL(plan.URL) != nil || !matrix.ValidLocalpart(plan.SenderLocalpart) {
			t.Fatalf("plan with invalid url/localpart: %+v", plan)
		}
		for k, v := range plan.Store {
			switch k {
			case db.SettingHomeserverURL, db.SettingHomeserverPublicURL:
				if matrix.ValidHTTPURL(v) != nil || strings.HasSuffix(v, "/") {
					t.Fatalf("stores bad %s %q", k, v)
				}
			case db.SettingHomeserverDomain:
				if !matrix.ValidDomain(v) {
					t.Fatalf("stores bad domain %q", v)
				}
			case db.SettingRegistrationSecret:
				if v == "" {
					t.Fatal("stores an empty secret")
				}
			default:
				t.Fatalf("stores unexpected key %s", k)
			}
		}
	})
}
