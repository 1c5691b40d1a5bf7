package matrix_test

import (
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"matrixas/db"
	"matrixas/matrix"
)

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
