package db

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestKeptCountsMatchTables: the trigger-kept room and profile counts and the recorder's
// per-minute buckets equal what a full count of the tables says, through inserts, state
// changes, reprovision and deletes.
func TestKeptCountsMatchTables(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	rec := runRecorder(t, s)
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot"}
	check := func(when string) {
		t.Helper()
		full := map[string]int{}
		rows, err := s.r.QueryContext(ctx, `SELECT state, COUNT(*) FROM matrix_rooms GROUP BY state`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var st string
			var n int
			rows.Scan(&st, &n)
			full[st] = n
		}
		rows.Close()
		d, err := s.DiagnosticStats(ctx, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(d.Rooms) != fmt.Sprint(full) {
			t.Errorf("%s: kept room counts %v, table says %v", when, d.Rooms, full)
		}
		var total, prov int
		s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(provisioned != 0), 0) FROM matrix_user_profiles`).Scan(&total, &prov)
		if d.ProfilesTotal != total || d.ProfilesProvisioned != prov {
			t.Errorf("%s: kept profiles %d/%d, table says %d/%d", when, d.ProfilesProvisioned, d.ProfilesTotal, prov, total)
		}
		var recent int64
		s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM as_transactions WHERE processed_at >= ?`, time.Now().Add(-time.Hour).Unix()/60*60).Scan(&recent)
		if int64(d.TransactionsSince) != recent {
			t.Errorf("%s: transactions in the last hour %d, table says %d", when, d.TransactionsSince, recent)
		}
	}
	check("empty")
	var projects []*Project
	for i := range 6 {
		u, _, err := s.PutUser(ctx, DirectoryUser{Username: fmt.Sprintf("u%d", i), IsActive: true}, rules)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := s.PutProject(ctx, DirectoryProject{Name: fmt.Sprintf("p%d", i)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoles(ctx, p.ID, []RoleInput{{UserUUID: u.UUID, Role: "member"}}, rules); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRoom(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		projects = append(projects, p)
	}
	check("after creating")
	s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'active' WHERE id % 2 = 0`)
	s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'error' WHERE id = 1`)
	s.w.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 1, provisioned_at = 1 WHERE user_id % 2 = 1`)
	s.w.ExecContext(ctx, `UPDATE matrix_rooms SET room_name = 'x'`) // not a state change
	check("after state changes")
	for i := range 30 {
		if _, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("c%d", i), EventCount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	s.w.ExecContext(ctx, `UPDATE settings SET value = 'true' WHERE key = 'enabled'`)
	if _, err := s.Reprovision(ctx, false); err != nil {
		t.Fatal(err)
	}
	check("after reprovision")
	s.w.ExecContext(ctx, `DELETE FROM matrix_rooms WHERE id = 3`)
	s.w.ExecContext(ctx, `DELETE FROM users WHERE username = 'u5'`)
	check("after deletes")
	_ = projects
}

// TestReprovisionProgressSkipsDeactivated: a user deactivated after a reprovision is not
// provisioned again, so the progress must not wait for them.
func TestReprovisionProgressSkipsDeactivated(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot"}
	var users []*User
	for i := range 3 {
		u, _, err := s.PutUser(ctx, DirectoryUser{Username: fmt.Sprintf("r%d", i), IsActive: true}, rules)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	s.w.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 1, provisioned_at = 1`)
	if _, err := s.Reprovision(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserActive(ctx, users[2].ID, false); err != nil {
		t.Fatal(err)
	}
	s.w.ExecContext(ctx, `UPDATE matrix_user_profiles SET provisioned = 1 WHERE user_id = ?`, users[0].ID)
	p, err := s.LastReprovision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.UsersRemaining != 1 || p.UsersDone != 1 {
		t.Errorf("remaining %d done %d, want 1 and 1 (the deactivated user is not waited for)", p.UsersRemaining, p.UsersDone)
	}
}

// TestMinuteCountsBecomeMarks: migration 12 turns the per-minute counts into minute marks
// (the counter before each minute), and the count since a minute reads the same as the
// sum of the minutes' counts did; the recorder's next transaction marks its own minute.
func TestMinuteCountsBecomeMarks(t *testing.T) {
	ctx := context.Background()
	s, err := OpenNoMigrate(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.MigrateTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	m := time.Now().Unix()/60 - 10 // ten minutes ago
	if _, err := s.w.ExecContext(ctx, `UPDATE counters SET value = 100 WHERE name = 'transactions';
		INSERT INTO txn_minutes (minute, n) VALUES (?1 - 70, 40), (?1 - 2, 5), (?1 - 1, 7), (?1, 3)`, m); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateTo(ctx, 12); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		since time.Time
		want  int
	}{
		{time.Unix((m-80)*60, 0), 55}, // every minute
		{time.Unix((m-60)*60, 0), 15}, // the last three
		{time.Unix((m-1)*60+30, 0), 10},
		{time.Unix(m*60, 0), 3},
		{time.Unix((m+1)*60, 0), 0},
	} {
		d, err := s.DiagnosticStats(ctx, c.since)
		if err != nil {
			t.Fatal(err)
		}
		if d.TransactionsTotal != 100 || d.TransactionsSince != c.want {
			t.Errorf("since %v: %d of %d, want %d of 100", c.since, d.TransactionsSince, d.TransactionsTotal, c.want)
		}
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES ('old', 1, 0)`); err != nil {
		t.Fatal(err)
	}
	rec := runRecorder(t, s)
	// A commit of a repeat only counts nothing and marks nothing; the next one marks.
	if res, err := rec.Record(ctx, TxnRecord{TxnID: "old", EventCount: 1}); err != nil || res.New {
		t.Fatalf("repeat: %+v %v", res, err)
	}
	if _, err := rec.Record(ctx, TxnRecord{TxnID: "after", EventCount: 1}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DiagnosticStats(ctx, time.Unix((m-1)*60, 0)); d.TransactionsSince != 11 || d.TransactionsTotal != 101 {
		t.Errorf("after one more: %d of %d, want 11 of 101", d.TransactionsSince, d.TransactionsTotal)
	}
	if d, _ := s.DiagnosticStats(ctx, time.Now()); d.TransactionsSince != 1 {
		t.Errorf("this minute: %d, want 1", d.TransactionsSince)
	}
}
