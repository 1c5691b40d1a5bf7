package db

import (
	"context"
	"regexp"
	"testing"

	"maunium.net/go/mautrix/id"
)

var userIDGrammar = regexp.MustCompile(`^@[a-z0-9._=\-/]+:example\.org$`)

// FuzzLocalpart: whatever two usernames are pushed, each user's Matrix id follows the
// Matrix user-id grammar, is never the bot's, and two users never share an id (a
// collision gets a suffix instead of silently merging two people).
func FuzzLocalpart(f *testing.F) {
	for _, s := range [][2]string{
		{"alice", "Alice"}, {"bob smith", "bob_smith"}, {"bot", "BOT"}, {"ÄÖÜ", "___"},
		{"a@b.c", "a_b.c"}, {"x", "x_2"}, {"", "uuid-only"}, {"\xff\xfe", "__"},
	} {
		f.Add(s[0], s[1])
	}
	s, err := Open(context.Background(), f.TempDir()+"/fuzz.db")
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot"}
	f.Fuzz(func(t *testing.T, a, b string) {
		ctx := context.Background()
		if _, err := s.w.ExecContext(ctx, `DELETE FROM users`); err != nil {
			t.Fatal(err)
		}
		var ids []id.UserID
		for _, name := range []string{a, b} {
			u, _, err := s.PutUser(ctx, DirectoryUser{Username: name, IsActive: true}, rules)
			if err != nil {
				continue // refused input (empty, too long, taken): nothing was derived
			}
			p, err := s.ProfileByUserID(ctx, u.ID)
			if err != nil {
				t.Fatalf("user %q has no profile: %v", name, err)
			}
			if !userIDGrammar.MatchString(p.MatrixUserID.String()) || len(p.MatrixUserID) > 255 {
				t.Fatalf("username %q gave %q, outside the Matrix grammar", name, p.MatrixUserID)
			}
			if p.MatrixUserID == "@bot:example.org" {
				t.Fatalf("username %q was given the bot's id", name)
			}
			ids = append(ids, p.MatrixUserID)
		}
		if len(ids) == 2 && ids[0] == ids[1] {
			t.Fatalf("usernames %q and %q share %s", a, b, ids[0])
		}
	})
}
