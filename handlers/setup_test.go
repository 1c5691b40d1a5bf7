package handlers

import (
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"matrixas/db"
	"matrixas/matrix"
)

func TestPlanSetup(t *testing.T) {
	empty := &db.MatrixSettings{SenderLocalpart: db.DefaultSenderLocalpart}
	configured := &db.MatrixSettings{
		HomeserverURL: "http://hs.internal:8008", HomeserverDomain: "example.org", RegistrationSecret: "s3cret",
		SenderLocalpart: "bridge-bot", AppserviceURL: "https://as.example.org",
	}
	full := SetupInput{URL: "https://as.example.org/", HomeserverURL: "https://matrix.example.org/", HomeserverDomain: "example.org", RegistrationSecret: "secret"}
	tests := []struct {
		name       string
		in         SetupInput
		ms         *db.MatrixSettings
		publicURL  string
		wantErrs   []string // fields with errors
		wantStore  map[string]string
		wantURL    string
		wantSender string
	}{
		{name: "all given, nothing configured", in: full, ms: empty,
			wantStore:  map[string]string{db.SettingHomeserverURL: "https://matrix.example.org", db.SettingHomeserverDomain: "example.org", db.SettingRegistrationSecret: "secret"},
			wantURL:    "https://as.example.org",
			wantSender: "waldur-bot"},
		{name: "nothing given, nothing configured", in: SetupInput{}, ms: empty,
			wantErrs: []string{"url", "homeserver_url", "homeserver_domain", "user_registration_secret"}},
		{name: "url falls back to PUBLIC_URL", in: SetupInput{HomeserverURL: "http://hs:8008", HomeserverDomain: "hs", RegistrationSecret: "x"}, ms: empty, publicURL: "http://as:8080",
			wantStore: map[string]string{db.SettingHomeserverURL: "http://hs:8008", db.SettingHomeserverDomain: "hs", db.SettingRegistrationSecret: "x"},
			wantURL:   "http://as:8080", wantSender: "waldur-bot"},
		{name: "configured values are kept, not overwritten", in: SetupInput{HomeserverURL: "http://other:8008", HomeserverDomain: "other.org"}, ms: configured,
			wantStore: map[string]string{}, wantURL: "https://as.example.org", wantSender: "bridge-bot"},
		{name: "public url stored when new", in: SetupInput{HomeserverPublicURL: "https://chat.example.org"}, ms: configured,
			wantStore: map[string]string{db.SettingHomeserverPublicURL: "https://chat.example.org"}, wantURL: "https://as.example.org", wantSender: "bridge-bot"},
		{name: "localpart regex refused", in: SetupInput{SenderLocalpart: ".*"}, ms: configured, wantErrs: []string{"sender_localpart"}},
		{name: "localpart uppercase refused", in: SetupInput{SenderLocalpart: "Bot"}, ms: configured, wantErrs: []string{"sender_localpart"}},
		{name: "localpart accepted", in: SetupInput{SenderLocalpart: "my.bot=1/x_y-z"}, ms: configured, wantStore: map[string]string{}, wantURL: "https://as.example.org", wantSender: "my.bot=1/x_y-z"},
		{name: "bad urls", in: SetupInput{URL: "ftp://as", HomeserverURL: "matrix.example.org", HomeserverPublicURL: "http://"}, ms: empty,
			wantErrs: []string{"url", "homeserver_url", "homeserver_public_url", "homeserver_domain", "user_registration_secret"}},
		{name: "bad domain", in: SetupInput{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "exa mple.org", RegistrationSecret: "x"}, ms: empty,
			wantErrs: []string{"homeserver_domain"}},
		{name: "domain with port", in: SetupInput{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "localhost:8448", RegistrationSecret: "x"}, ms: empty,
			wantStore: map[string]string{db.SettingHomeserverURL: "http://hs", db.SettingHomeserverDomain: "localhost:8448", db.SettingRegistrationSecret: "x"},
			wantURL:   "http://as", wantSender: "waldur-bot"},
		{name: "domain with bad port", in: SetupInput{URL: "http://as", HomeserverURL: "http://hs", HomeserverDomain: "localhost:99999", RegistrationSecret: "x"}, ms: empty,
			wantErrs: []string{"homeserver_domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, errs := PlanSetup(tt.in, tt.ms, tt.publicURL)
			if len(tt.wantErrs) > 0 {
				if plan != nil {
					t.Fatalf("want errors on %v, got a plan %+v", tt.wantErrs, plan)
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
			if errs != nil {
				t.Fatalf("unexpected errors: %v", errs)
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

func TestRegistrationYAMLParsesBack(t *testing.T) {
	for _, domain := range []string{"example.org", "localhost:8448", "a-b.c.d", "x"} {
		ms := &db.MatrixSettings{
			ASToken: "a1", HSToken: "h2", HomeserverDomain: domain, SenderLocalpart: "waldur.bot",
			AppserviceURL: "https://as.example.org",
		}
		reg, err := matrix.BuildRegistration(ms)
		if err != nil {
			t.Fatal(err)
		}
		text, err := reg.YAML()
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := yaml.Unmarshal([]byte(text), &back); err != nil {
			t.Fatalf("%s: YAML does not parse: %v\n%s", domain, err, text)
		}
		want := map[string]any{"id": "waldur", "url": "https://as.example.org", "as_token": "a1", "hs_token": "h2", "sender_localpart": "waldur.bot", "rate_limited": false}
		for k, v := range want {
			if back[k] != v {
				t.Errorf("%s: %s = %v, want %v", domain, k, back[k], v)
			}
		}
		ns := back["namespaces"].(map[string]any)
		users := ns["users"].([]any)
		aliases := ns["aliases"].([]any)
		rooms, ok := ns["rooms"].([]any)
		if len(users) != 2 || len(aliases) != 1 || !ok || len(rooms) != 0 {
			t.Fatalf("%s: namespaces %v", domain, ns)
		}
		bot := regexp.MustCompile(users[0].(map[string]any)["regex"].(string))
		all := regexp.MustCompile(users[1].(map[string]any)["regex"].(string))
		alias := regexp.MustCompile(aliases[0].(map[string]any)["regex"].(string))
		if users[0].(map[string]any)["exclusive"] != true || users[1].(map[string]any)["exclusive"] != false || aliases[0].(map[string]any)["exclusive"] != true {
			t.Errorf("%s: exclusivity wrong: %v", domain, ns)
		}
		checks := []struct {
			re    *regexp.Regexp
			s     string
			match bool
		}{
			{bot, "@waldur.bot:" + domain, true},
			{bot, "@waldurxbot:" + domain, false}, // the dot is escaped
			{bot, "@waldur.bot:" + domain + ".evil", false},
			{all, "@alice:" + domain, true},
			{all, "@alice:other.org", false},
			{alias, "#waldur-0123abcd:" + domain, true},
			{alias, "#other:" + domain, false},
			{alias, "#waldur-x:y:" + domain, false},
		}
		for _, c := range checks {
			if c.re.MatchString(c.s) != c.match {
				t.Errorf("%s: %s matches %s = %v, want %v", domain, c.re, c.s, !c.match, c.match)
			}
		}
	}
}

func TestParseTransaction(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		code     string
		count    int
		nMembers int
	}{
		{"empty events", `{"events":[]}`, "", 0, 0},
		{"with ephemeral", `{"events":[],"ephemeral":[{"type":"m.typing"}]}`, "", 0, 0},
		{"one message", `{"events":[{"type":"m.room.message","event_id":"$1","room_id":"!r:x","content":{"body":"hi"}}]}`, "", 1, 0},
		{"membership", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","sender":"@a:x","state_key":"@a:x","content":{"membership":"leave"}}]}`, "", 1, 1},
		{"member without state key ignored", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","content":{"membership":"join"}}]}`, "", 1, 0},
		{"not json", `{"events":`, "M_NOT_JSON", 0, 0},
		{"not an object", `[1,2]`, "M_BAD_JSON", 0, 0},
		{"events missing", `{}`, "M_BAD_JSON", 0, 0},
		{"events null", `{"events":null}`, "M_BAD_JSON", 0, 0},
		{"events object", `{"events":{"a":1}}`, "M_BAD_JSON", 0, 0},
		{"events string", `{"events":"x"}`, "M_BAD_JSON", 0, 0},
		{"event not object", `{"events":[1]}`, "M_BAD_JSON", 0, 0},
		{"user content with odd types is tolerated", `{"events":[{"type":"m.room.message","event_id":"$3","room_id":"!r:x","content":{"membership":5,"body":{}}},{"type":"m.room.member","event_id":"$4","room_id":"!r:x","state_key":"@b:x","content":{"membership":"join"}}]}`, "", 2, 1},
		{"escaped member type is still seen", `{"events":[{"type":"m.room.\u006dember","event_id":"$6","room_id":"!r:x","state_key":"@c:x","content":{"membership":"leave"}}]}`, "", 1, 1},
		{"odd state key type is tolerated", `{"events":[{"type":"m.room.member","event_id":"$5","room_id":"!r:x","state_key":7,"content":{"membership":"join"}}]}`, "", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, members, err := ParseTransaction([]byte(tt.body))
			if tt.code != "" {
				var bad errTxnBody
				if err == nil || !asTxnErr(err, &bad) || bad.code != tt.code {
					t.Fatalf("err %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.count || len(members) != tt.nMembers {
				t.Errorf("count %d members %d, want %d %d", n, len(members), tt.count, tt.nMembers)
			}
		})
	}
}

func asTxnErr(err error, target *errTxnBody) bool {
	e, ok := err.(errTxnBody)
	if ok {
		*target = e
	}
	return ok
}
