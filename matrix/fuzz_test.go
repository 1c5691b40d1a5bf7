package matrix

import (
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"matrixas/db"
	"matrixas/settings"
)

func token(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return s != ""
}

// FuzzRegistrationYAML: for any valid domain and localpart, the registration YAML parses
// back to the same values, and its namespaces match the bot and the domain's users and
// aliases, and nothing of another domain.
func FuzzRegistrationYAML(f *testing.F) {
	f.Add("example.org", "waldur-bot", "https://as.example.org", "tok1", "tok2")
	f.Add("localhost:8448", "a.b=c/d", "http://127.0.0.1:8080", "x", "y")
	f.Add("x-.y", "_", "http://h", "#: not a comment", "'quoted'")
	f.Add("example.org", "waldur-bot", "", "tok1", "tok2") // no url: url: null
	f.Fuzz(func(t *testing.T, domain, localpart, url, as, hs string) {
		// Inputs the product can produce: setup validates domain, localpart and url, and
		// tokens are generated (64 hex digits; any visible ASCII is tried here).
		if settings.HomeserverDomain.Validate(domain) != nil || settings.SenderLocalpart.Validate(localpart) != nil ||
			(url != "" && settings.AppserviceURL.Validate(url) != nil) || !token(as) || !token(hs) {
			return
		}
		ms := &db.MatrixSettings{HomeserverDomain: domain, SenderLocalpart: localpart, AppserviceURL: url, ASToken: as, HSToken: hs}
		reg, err := BuildRegistration(ms)
		if err != nil {
			t.Fatal(err)
		}
		text, err := reg.YAML()
		if err != nil {
			t.Fatal(err)
		}
		var back Registration
		if err := yaml.Unmarshal([]byte(text), &back); err != nil {
			t.Fatalf("does not parse: %v\n%s", err, text)
		}
		if url == "" && !strings.Contains(text, "\nurl: null\n") {
			t.Fatalf("no url is not written url: null:\n%s", text)
		}
		if back.ID != AppserviceID || string(back.URL) != url || back.ASToken != as || back.HSToken != hs || back.SenderLocalpart != localpart || back.RateLimited {
			t.Fatalf("round trip changed values: %+v", back)
		}
		if len(back.Namespaces.Users) != 2 || len(back.Namespaces.Aliases) != 1 || back.Namespaces.Rooms == nil {
			t.Fatalf("namespaces: %+v", back.Namespaces)
		}
		bot := regexp.MustCompile(back.Namespaces.Users[0].Regex)
		users := regexp.MustCompile(back.Namespaces.Users[1].Regex)
		aliases := regexp.MustCompile(back.Namespaces.Aliases[0].Regex)
		if !bot.MatchString("@"+localpart+":"+domain) || bot.MatchString("@"+localpart+"x:"+domain) {
			t.Fatalf("bot regex %s", bot)
		}
		if !users.MatchString("@someone:"+domain) || users.MatchString("@someone:"+domain+"x") {
			t.Fatalf("users regex %s", users)
		}
		if !aliases.MatchString("#"+AliasPrefix+"abc:"+domain) || aliases.MatchString("#other:"+domain) {
			t.Fatalf("alias regex %s", aliases)
		}
	})
}
