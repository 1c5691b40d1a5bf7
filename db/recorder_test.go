package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/id"
)

// members returns n membership events of room with ids unique to txn, so that the
// result of recording them (MemberRows) tells whose answer a caller got.
func members(room id.RoomID, txn string, n int) []MemberEvent {
	var ms []MemberEvent
	for i := range n {
		ms = append(ms, MemberEvent{EventID: id.EventID(fmt.Sprintf("$%s-%d", txn, i)), RoomID: room,
			StateKey: "@someone:example.org", Sender: "@someone:example.org", Membership: "join"})
	}
	return ms
}

// TestRecorderConcurrentExact: many callers at once, each txnId sent twice by two
// different callers: each id is new exactly once, the other delivery is answered as a
// duplicate, each caller gets its own transaction's result (not a batch sibling's), and
// the counters and rows match the distinct ids.
func TestRecorderConcurrentExact(t *testing.T) {
	s := newStore(t)
	activeRoom(t, s, "P", "!p:example.org")
	rec := runRecorder(t, s)
	ctx := context.Background()
	const callers, perCaller = 32, 40
	var mu sync.Mutex
	newCount := map[string]int{}
	dupCount := map[string]int{}
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perCaller {
				// Callers c and c^1 send the same ids, in opposite orders, so that the
				// two deliveries of an id race in the same or in adjacent batches.
				k := i
				if c%2 == 1 {
					k = perCaller - 1 - i
				}
				txn := fmt.Sprintf("c%d-%d", c/2, k)
				n := 1 + k%4
				finish := rec.Expect() // as the webhook announces a request it is reading
				res, err := rec.Record(ctx, TxnRecord{TxnID: txn, EventCount: n, Members: members("!p:example.org", txn, n)})
				finish()
				if err != nil {
					t.Error(err)
					return
				}
				if res.New && res.MemberRows != n {
					t.Errorf("%s: %d member rows, want its own %d", txn, res.MemberRows, n)
				}
				if !res.New && res.MemberRows != 0 {
					t.Errorf("%s: a duplicate kept %d member rows", txn, res.MemberRows)
				}
				mu.Lock()
				if res.New {
					newCount[txn]++
				} else {
					dupCount[txn]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	distinct := callers / 2 * perCaller
	if len(newCount) != distinct || len(dupCount) != distinct {
		t.Fatalf("%d ids new, %d answered as duplicates; want %d and %d", len(newCount), len(dupCount), distinct, distinct)
	}
	for txn, n := range newCount {
		if n != 1 || dupCount[txn] != 1 {
			t.Errorf("%s: new %d times, duplicate %d times; want 1 and 1", txn, n, dupCount[txn])
		}
	}
	events := 0
	for k := range perCaller {
		events += 1 + k%4
	}
	events *= callers / 2
	if n, _ := s.Counter(ctx, CounterTransactions); n != int64(distinct) {
		t.Errorf("transactions counter %d, want %d", n, distinct)
	}
	if n, _ := s.Counter(ctx, CounterEvents); n != int64(events) {
		t.Errorf("events counter %d, want %d", n, events)
	}
	if n, _ := s.CountTransactionRows(ctx); n != int64(distinct) {
		t.Errorf("%d transaction rows, want %d", n, distinct)
	}
	var memberRows int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM membership_events`).Scan(&memberRows); err != nil {
		t.Fatal(err)
	}
	if memberRows != events {
		t.Errorf("%d membership rows, want %d", memberRows, events)
	}
}

// TestRecorderFailureIsolated: a transaction that cannot be written (a trigger on the
// writer connection refuses its id) fails alone, whatever batch it shares; every other
// transaction, recorded at the same time, is written once and counted once.
func TestRecorderFailureIsolated(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	// TEMP objects live on one connection: the writer pool has exactly one.
	if _, err := s.w.ExecContext(ctx, `CREATE TEMP TRIGGER refuse_poison BEFORE INSERT ON as_transactions
		WHEN NEW.txn_id LIKE 'poison%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	rec := runRecorder(t, s)
	const callers, perCaller = 24, 30
	var mu sync.Mutex
	failed := map[string]bool{}
	recorded := map[string]int{}
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perCaller {
				txn := fmt.Sprintf("ok-%d-%d", c, i)
				if (c+i)%7 == 0 {
					txn = fmt.Sprintf("poison-%d-%d", c, i)
				}
				res, err := rec.Record(ctx, TxnRecord{TxnID: txn, EventCount: 2})
				mu.Lock()
				switch {
				case err != nil:
					failed[txn] = true
				case res.New:
					recorded[txn]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	want := 0
	for txn := range failed {
		if !strings.HasPrefix(txn, "poison") {
			t.Errorf("%s failed beside a refused transaction", txn)
		}
	}
	for c := range callers {
		for i := range perCaller {
			if (c+i)%7 == 0 {
				if !failed[fmt.Sprintf("poison-%d-%d", c, i)] {
					t.Errorf("poison-%d-%d did not fail", c, i)
				}
				continue
			}
			want++
			if txn := fmt.Sprintf("ok-%d-%d", c, i); recorded[txn] != 1 {
				t.Errorf("%s recorded as new %d times, want 1", txn, recorded[txn])
			}
		}
	}
	if n, _ := s.CountTransactionRows(ctx); n != int64(want) {
		t.Errorf("%d rows, want %d", n, want)
	}
	if n, _ := s.Counter(ctx, CounterTransactions); n != int64(want) {
		t.Errorf("transactions counter %d, want %d", n, want)
	}
	if n, _ := s.Counter(ctx, CounterEvents); n != int64(2*want) {
		t.Errorf("events counter %d, want %d", n, 2*want)
	}
}

// TestRecorderShutdownDrains: Run is stopped while callers keep recording. Every call
// returns; each answered with a result is on disk, each refused with ErrRecorderStopped
// is not.
func TestRecorderShutdownDrains(t *testing.T) {
	s := newStore(t)
	rec := s.NewRecorder(16)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rec.Run(ctx); close(stopped) }()
	const callers = 16
	var mu sync.Mutex
	var ok, refused []string
	started := make(chan struct{}, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				txn := fmt.Sprintf("s-%d-%d", c, i)
				_, err := rec.Record(context.Background(), TxnRecord{TxnID: txn, EventCount: 1})
				if i == 0 {
					started <- struct{}{}
				}
				mu.Lock()
				if errors.Is(err, ErrRecorderStopped) {
					refused = append(refused, txn)
					mu.Unlock()
					return
				}
				if err != nil {
					t.Errorf("%s: %v", txn, err)
				}
				ok = append(ok, txn)
				mu.Unlock()
			}
		}()
	}
	for range callers {
		<-started // every caller has committed at least once: the stop comes under load
	}
	cancel()
	<-stopped
	wg.Wait() // every call returned: none was left waiting in a queue nobody commits
	if len(refused) != callers {
		t.Errorf("%d callers were refused, want all %d", len(refused), callers)
	}
	bg := context.Background()
	for _, txn := range ok {
		if seen, err := s.TransactionSeen(bg, txn); err != nil || !seen {
			t.Errorf("%s was answered as recorded but is not stored (%v)", txn, err)
		}
	}
	for _, txn := range refused {
		if seen, _ := s.TransactionSeen(bg, txn); seen {
			t.Errorf("%s was refused but is stored", txn)
		}
	}
	if n, _ := s.CountTransactionRows(bg); n != int64(len(ok)) {
		t.Errorf("%d rows, %d calls answered as recorded", n, len(ok))
	}
}

// TestRecorderCommitsWithoutRun: the first request finding no commit under way commits
// itself, so recording needs no goroutine of the recorder's own.
func TestRecorderCommitsWithoutRun(t *testing.T) {
	s := newStore(t)
	rec := s.NewRecorder(8)
	ctx := context.Background()
	res, err := rec.Record(ctx, TxnRecord{TxnID: "inline", EventCount: 1})
	if err != nil || !res.New {
		t.Fatalf("Record: %+v %v", res, err)
	}
	if res, err := rec.Record(ctx, TxnRecord{TxnID: "inline", EventCount: 1}); err != nil || res.New {
		t.Fatalf("Record again: %+v %v, want a duplicate", res, err)
	}
	if seen, _ := s.TransactionSeen(ctx, "inline"); !seen {
		t.Error("not stored")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rec.Record(cctx, TxnRecord{TxnID: "cancelled"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Record with a cancelled context: %v", err)
	}
	if seen, _ := s.TransactionSeen(ctx, "cancelled"); seen {
		t.Error("a request refused for its context was stored")
	}
}

// walSize is the size of the store's -wal file (0 when there is none).
func walSize(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(s.path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCheckpointerBoundsWAL: with the checkpointer started, commits do not checkpoint
// (the WAL grows past SQLite's 1,000 pages); one tick brings it back under MaxPages for
// the next commit, and a tick after IdleAfter without writes empties the file.
func TestCheckpointerBoundsWAL(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const maxPages = 64
	c := s.NewCheckpointer(CheckpointOptions{MaxPages: maxPages, IdleAfter: 1})
	if err := c.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint %d (%v), want 0 while the checkpointer runs", auto, err)
	}
	rec := runRecorder(t, s)
	for i := range 3000 {
		if _, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("w%d", i), EventCount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if size := walSize(t, s); size < 1000*4096 {
		t.Fatalf("WAL %d bytes after 3,000 commits: a commit checkpointed it", size)
	}
	if err := c.tick(ctx); err != nil {
		t.Fatal(err)
	}
	// The next commit starts the WAL over, and journal_size_limit shrinks its file.
	if _, err := rec.Record(ctx, TxnRecord{TxnID: "after", EventCount: 1}); err != nil {
		t.Fatal(err)
	}
	bound := int64(maxPages) * 4096
	if size := walSize(t, s); size > bound {
		t.Errorf("WAL %d bytes after a tick and a commit, want at most %d", size, bound)
	}
	// Idle: the first tick notes the WAL unchanged, the next one (IdleAfter later) truncates.
	for range 2 {
		if err := c.tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if size := walSize(t, s); size != 0 {
		t.Errorf("WAL %d bytes after an idle tick, want 0", size)
	}
	if n, _ := s.CountTransactionRows(ctx); n != 3001 {
		t.Errorf("%d rows, want 3001", n)
	}
}

// TestCheckpointerRunUnderLoad: the checkpointer runs beside concurrent commits, and its
// stop gives the writer its automatic checkpoint back; nothing written is lost.
func TestCheckpointerRunUnderLoad(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	rec := runRecorder(t, s)
	cctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { s.NewCheckpointer(CheckpointOptions{Interval: 2e6, MaxPages: 32}).Run(cctx); close(stopped) }()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				if _, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("l%d-%d", c, i), EventCount: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	<-stopped
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 1000 {
		t.Errorf("writer's wal_autocheckpoint %d (%v) after the checkpointer stopped, want 1000", auto, err)
	}
	if n, _ := s.CountTransactionRows(ctx); n != 2400 {
		t.Errorf("%d rows, want 2400", n)
	}
}
