package db

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/settings"
)

// userIDGrammar is the Matrix user-id grammar (spec v1.8+: + is allowed) on our domain.
var userIDGrammar = regexp.MustCompile(`^@[a-z0-9._=\-/+]+:example\.org$`)

// badEscape finds an "=" that does not start an "=xx" escape with two lowercase hex digits.
var badEscape = regexp.MustCompile(`=([^0-9a-f]|.[^0-9a-f]|.?$)`)

// FuzzLocalpart: whatever two users are pushed (usernames, emails, in any of the three
// MATRIX_USER_ID_FORMATs), each user's Matrix id follows the Matrix user-id grammar, its
// escapes are well formed, it is never the bot's, and two users never share an id (a
// collision gets a suffix instead of silently merging two people).
func FuzzLocalpart(f *testing.F) {
	for _, s := range [][4]string{
		{"alice", "Alice", "", ""}, {"bob smith", "bob_smith", "", ""}, {"bot", "BOT", "", ""}, {"ÄÖÜ", "___", "", ""},
		{"a@b.c", "a_b.c", "", ""}, {"x", "x_2", "", ""}, {"", "uuid-only", "", ""}, {"\xff\xfe", "__", "", ""},
		{"a=b", "a=3db", "", ""}, {"ä", "=c3=a4", "", ""}, {"p+q", "p_q", "", ""},
		{"carol", "dave", "same@example.org", "Same@example.org"}, {"eve", "frank", "bot@x", "=ff@y"},
	} {
		for format := range uint8(3) {
			f.Add(format, s[0], s[1], s[2], s[3])
		}
	}
	s, err := Open(context.Background(), f.TempDir()+"/fuzz.db")
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, format uint8, a, b, emailA, emailB string) {
		ctx := context.Background()
		rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot", Format: settings.UserIDFormats[int(format)%len(settings.UserIDFormats)]}
		if _, err := s.w.ExecContext(ctx, `DELETE FROM users`); err != nil {
			t.Fatal(err)
		}
		var ids []id.UserID
		for i, name := range []string{a, b} {
			email := []string{emailA, emailB}[i]
			u, _, err := s.PutUser(ctx, DirectoryUser{Username: name, Email: email, IsActive: true}, rules)
			if err != nil {
				continue // refused input (empty, too long, taken): nothing was derived
			}
			p, err := s.ProfileByUserID(ctx, u.ID)
			if err != nil {
				t.Fatalf("user %q has no profile: %v", name, err)
			}
			mxid := p.MatrixUserID.String()
			if !userIDGrammar.MatchString(mxid) || len(mxid) > 255 {
				t.Fatalf("username %q (email %q, format %s) gave %q, outside the Matrix grammar", name, email, rules.Format, mxid)
			}
			if lp := strings.TrimSuffix(strings.TrimPrefix(mxid, "@"), ":example.org"); badEscape.MatchString(lp) {
				t.Fatalf("username %q (email %q, format %s) gave %q, with a broken =xx escape", name, email, rules.Format, mxid)
			}
			if p.MatrixUserID == "@bot:example.org" {
				t.Fatalf("username %q was given the bot's id", name)
			}
			ids = append(ids, p.MatrixUserID)
		}
		if len(ids) == 2 && ids[0] == ids[1] {
			t.Fatalf("users %q and %q share %s", a, b, ids[0])
		}
	})
}
