package db

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func runRecorder(t *testing.T, s *Store) *Recorder {
	t.Helper()
	rec := s.NewRecorder(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

func TestRecorderIdempotentAndCounted(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	news := map[string]int{}
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("t%d", i%50) // each txnId four times, concurrently
			res, err := rec.Record(ctx, TxnRecord{TxnID: id, EventCount: 3})
			if err != nil {
				t.Error(err)
				return
			}
			if res.New {
				mu.Lock()
				news[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(news) != 50 {
		t.Fatalf("%d txnIds recorded as new, want 50", len(news))
	}
	for id, n := range news {
		if n != 1 {
			t.Errorf("%s was new %d times", id, n)
		}
	}
	if n, _ := s.Counter(ctx, CounterTransactions); n != 50 {
		t.Errorf("transactions counter %d, want 50", n)
	}
	if n, _ := s.Counter(ctx, CounterEvents); n != 150 {
		t.Errorf("events counter %d, want 150", n)
	}
	if at, _ := s.Counter(ctx, CounterLastTransactionAt); time.Since(time.Unix(at, 0)) > time.Minute {
		t.Errorf("last transaction time %d is not now", at)
	}
}

func TestPruneKeepsCount(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	for i := range 30 {
		if _, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("p%d", i), EventCount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Age the first 20 rows by 40 days.
	if _, err := s.w.ExecContext(ctx, `UPDATE as_transactions SET processed_at = processed_at - 40*86400 WHERE CAST(substr(txn_id, 2) AS INTEGER) < 20`); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneTransactions(ctx, time.Now().Add(-30*24*time.Hour))
	if err != nil || n != 20 {
		t.Fatalf("pruned %d (%v), want 20", n, err)
	}
	rows, _ := s.CountTransactionRows(ctx)
	counter, _ := s.Counter(ctx, CounterTransactions)
	if rows != 10 || counter != 30 {
		t.Errorf("after pruning: rows %d (want 10), counter %d (want 30: the count stays)", rows, counter)
	}
	if seen, _ := s.TransactionSeen(ctx, "p25"); !seen {
		t.Error("a recent transaction was pruned")
	}
}

func TestRecorderStopped(t *testing.T) {
	s := newStore(t)
	rec := s.NewRecorder(8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	cancel()
	<-done
	if _, err := rec.Record(context.Background(), TxnRecord{TxnID: "late"}); err != ErrRecorderStopped {
		t.Fatalf("Record after stop: %v, want ErrRecorderStopped", err)
	}
	if seen, _ := s.TransactionSeen(context.Background(), "late"); seen {
		t.Error("a transaction was recorded by a stopped recorder")
	}
}

// TestRecorderMembershipMarksRooms: membership events in managed rooms are kept and mark
// the room for a member re-sync only when they depart from the roles; others are ignored.
func TestRecorderMembershipMarksRooms(t *testing.T) {
	s := newStore(t)
	rec := runRecorder(t, s)
	ctx := context.Background()
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "bot"}
	alice, _, err := s.PutUser(ctx, DirectoryUser{Username: "alice", IsActive: true}, rules)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutUser(ctx, DirectoryUser{Username: "mallory", IsActive: true}, rules); err != nil {
		t.Fatal(err)
	}
	p, _, err := s.PutProject(ctx, DirectoryProject{Name: "P"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoles(ctx, p.ID, []RoleInput{{UserUUID: alice.UUID, Role: "member"}}, rules); err != nil {
		t.Fatal(err)
	}
	room, err := s.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE matrix_rooms SET state = 'active', room_id = '!managed:example.org', members_dirty = 0 WHERE id = ?`, room.ID); err != nil {
		t.Fatal(err)
	}
	// The worker has synced alice into the room.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO matrix_room_members (room_pk, user_id, membership) VALUES (?, ?, 'join')`, room.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	dirty := func() bool {
		var d int
		s.r.QueryRowContext(ctx, `SELECT members_dirty FROM matrix_rooms WHERE id = ?`, room.ID).Scan(&d)
		return d == 1
	}
	clean := func() { s.w.ExecContext(ctx, `UPDATE matrix_rooms SET members_dirty = 0 WHERE id = ?`, room.ID) }
	tests := []struct {
		name                  string
		ev                    MemberEvent
		wantKept, wantDirtied bool
	}{
		{"unmanaged room ignored", MemberEvent{EventID: "$1", RoomID: "!other:example.org", StateKey: "@alice:example.org", Membership: "leave"}, false, false},
		{"member joins: as desired", MemberEvent{EventID: "$2", RoomID: "!managed:example.org", StateKey: "@alice:example.org", Membership: "join"}, true, false},
		{"member leaves: re-sync", MemberEvent{EventID: "$3", RoomID: "!managed:example.org", StateKey: "@alice:example.org", Membership: "leave"}, true, true},
		{"outsider joins: re-sync", MemberEvent{EventID: "$4", RoomID: "!managed:example.org", StateKey: "@mallory:example.org", Membership: "join"}, true, true},
		{"outsider leaves: as desired", MemberEvent{EventID: "$5", RoomID: "!managed:example.org", StateKey: "@mallory:example.org", Membership: "leave"}, true, false},
		{"the bot joins: never a re-sync", MemberEvent{EventID: "$6", RoomID: "!managed:example.org", StateKey: "@bot:example.org", Membership: "join"}, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean()
			res, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("m%d", i), EventCount: 1, Members: []MemberEvent{tt.ev}, BotUserID: "@bot:example.org"})
			if err != nil {
				t.Fatal(err)
			}
			if (res.MemberRows == 1) != tt.wantKept || (res.RoomsDirty == 1) != tt.wantDirtied || dirty() != tt.wantDirtied {
				t.Errorf("kept %d dirtied %d (room dirty %v), want kept %v dirtied %v", res.MemberRows, res.RoomsDirty, dirty(), tt.wantKept, tt.wantDirtied)
			}
		})
	}
	// The member's recorded membership follows the events.
	var m string
	s.r.QueryRowContext(ctx, `SELECT membership FROM matrix_room_members WHERE room_pk = ? AND user_id = ?`, room.ID, alice.ID).Scan(&m)
	if m != "leave" {
		t.Errorf("alice's membership %q, want leave", m)
	}
}

// TestRecordLargeBatchWithRepeats writes large batches with txnIds repeated inside a
// batch and across batches: each id is new exactly once, and the counters move by the
// new ones only.
func TestRecordLargeBatchWithRepeats(t *testing.T) {
	s := newStore(t)
	rec := s.NewRecorder(512)
	ctx := context.Background()
	batch := func(ids ...string) []*txnReq {
		var b []*txnReq
		for _, id := range ids {
			b = append(b, &txnReq{rec: TxnRecord{TxnID: id, EventCount: 2}, done: make(chan txnDone, 1)})
		}
		return b
	}
	var first []string
	for i := range 150 { // ids 0..99, so 50 repeat inside the batch
		first = append(first, fmt.Sprintf("c%d", i%100))
	}
	first = append(first, "c7", "c7")                        // and one id three times
	second := []string{"c5", "new1", "c149", "new1", "new2"} // c149 was not in the first
	wantNew := map[string]int{}
	for _, ids := range [][]string{first, second} {
		b := batch(ids...)
		rec.write(b)
		for i, req := range b {
			d := <-req.done
			if d.err != nil {
				t.Fatal(d.err)
			}
			if d.res.New {
				wantNew[ids[i]]++
			}
		}
	}
	if len(wantNew) != 103 { // c0..c99, c149, new1, new2
		t.Fatalf("%d ids recorded as new, want 103: %v", len(wantNew), wantNew)
	}
	for id, n := range wantNew {
		if n != 1 {
			t.Errorf("%s new %d times", id, n)
		}
	}
	if n, err := s.CountTransactionRows(ctx); err != nil || n != 103 {
		t.Fatalf("rows = %d (%v), want 103", n, err)
	}
	c, err := s.Counter(ctx, CounterTransactions)
	if err != nil || c != 103 {
		t.Fatalf("transactions counter = %d (%v), want 103", c, err)
	}
	if c, _ := s.Counter(ctx, CounterEvents); c != 206 {
		t.Fatalf("events counter = %d, want 206", c)
	}
}
