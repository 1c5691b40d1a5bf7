package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix/id"
)

// MemberEvent is the part of an m.room.member event the appservice keeps.
type MemberEvent struct {
	EventID    id.EventID
	RoomID     id.RoomID
	StateKey   id.UserID // the member the event is about
	Sender     id.UserID
	Membership string
}

// CommandEvent is a message of a transaction that is a bot command (its first word
// starts with "!"), to be answered through the outbox.
type CommandEvent struct {
	EventID id.EventID
	RoomID  id.RoomID
	Sender  id.UserID
	Body    string
	MsgType string // only m.text is answered
}

// TxnRecord is one homeserver transaction to record.
type TxnRecord struct {
	TxnID      string
	EventCount int
	Members    []MemberEvent
	// Commands are queued for a reply in the transaction that records the txnId, so a
	// 200 to the homeserver means the answer will be sent. Only commands in active
	// managed rooms, of type m.text and not sent by the bot are; with BotUserID unset none
	// is (the bot must never answer itself).
	Commands  []CommandEvent
	BotUserID id.UserID // the bot's own membership never marks a room for re-sync
}

// TxnResult says what recording did.
type TxnResult struct {
	New        bool // false: the txnId was seen before and nothing was processed
	RoomsDirty int  // managed rooms whose members now need a re-sync
	MemberRows int  // membership events kept
	// Commands counts the replies queued; CommandsDropped the commands left unanswered
	// by the rate rule (ReplyRateLimit per room per ReplyRateWindow), which are not
	// recorded anywhere.
	Commands        int
	CommandsDropped int
}

// ErrRecorderStopped is returned when the recorder is no longer running.
var ErrRecorderStopped = errors.New("db: transaction recorder stopped")

// txnReq is one Record call on its way through the recorder.
type txnReq struct {
	rec  TxnRecord
	done chan txnDone
}

// txnDone is what a waiting request is told: its answer, or (lead) that it is the next
// leader and commits the queue itself.
type txnDone struct {
	res  TxnResult
	err  error
	lead bool
}

// Recorder records homeserver transactions durably with leader/follower group commit: a
// request that finds no commit under way commits itself, inline, with no hand-off (and,
// one at a time, no wait); requests that arrive while a commit is under way queue, and
// the first of them leads the next commit for all of them in one SQLite transaction.
// Under concurrency a leader may wait briefly for more (see gather). Every caller gets its
// answer only after the transaction holding its request committed. A txnId is recorded
// once, ever (until pruned), so a retried or concurrent delivery is a no-op; the counters
// move in the same transaction.
type Recorder struct {
	store    *Store
	maxBatch int
	stopped  chan struct{} // closed when Run returned: nothing is recorded any more

	mu      sync.Mutex
	idle    sync.Cond // signalled when leading turns false
	leading bool      // a commit is under way (or handed to the next leader)
	closing bool      // Run is stopping: no new request is taken
	queue   []*txnReq // waiting for the next commit, in arrival order

	inflight  atomic.Int64  // requests between Expect and its done
	gathering atomic.Bool   // a leader waits in gather
	arrived   chan struct{} // wakes it

	// Only the leader touches these, and there is one leader at a time.
	ws     *writerStmts // prepared once on the writer connection
	batch  []*txnReq
	last   int   // the previous commit's batch size
	marked int64 // the minute whose mark is committed (see sqlMarkMinute)
	timer  *time.Timer
}

// NewRecorder returns a recorder whose commits hold at most maxBatch transactions. Record
// works from the start; Run is its lifetime (cancelling Run's context stops it once the
// requests already taken are committed).
func (s *Store) NewRecorder(maxBatch int) *Recorder {
	r := &Recorder{store: s, maxBatch: max(maxBatch, 1), stopped: make(chan struct{}), arrived: make(chan struct{}, 1),
		ws: &writerStmts{}, timer: time.NewTimer(time.Hour)}
	r.timer.Stop()
	r.idle.L = &r.mu
	return r
}

// txnReqs are reused: a request goes back once its answer was received, so nothing
// else holds it.
var txnReqs = sync.Pool{New: func() any { return &txnReq{done: make(chan txnDone, 1)} }}

// Record records rec and returns once it is committed (or failed). A context already
// done is refused; once taken, the request is committed whatever happens to ctx: a
// client that went away still gets its transaction recorded, and its retry will be a
// duplicate.
func (r *Recorder) Record(ctx context.Context, rec TxnRecord) (TxnResult, error) {
	if err := ctx.Err(); err != nil {
		return TxnResult{}, err
	}
	req := txnReqs.Get().(*txnReq)
	req.rec = rec
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		req.rec = TxnRecord{}
		txnReqs.Put(req)
		return TxnResult{}, ErrRecorderStopped
	}
	r.queue = append(r.queue, req)
	lead := !r.leading
	r.leading = true
	r.mu.Unlock()
	r.nudge()
	if lead {
		r.lead()
	}
	// The answer, or (only when a commit was under way) the word to lead the next one.
	d := <-req.done
	if d.lead {
		r.lead()
		d = <-req.done
	}
	req.rec = TxnRecord{}
	txnReqs.Put(req)
	return d.res, d.err
}

// lead commits the queue as it is now (at most maxBatch requests, the caller's among
// them), answers every request of it, and passes the lead on to the first request that
// queued meanwhile, or gives it up when none did. The caller reads its own answer from
// its done channel.
func (r *Recorder) lead() {
	r.gather()
	r.mu.Lock()
	n := min(len(r.queue), r.maxBatch)
	r.batch = append(r.batch[:0], r.queue[:n]...)
	r.queue = append(r.queue[:0], r.queue[n:]...)
	r.mu.Unlock()
	r.last = len(r.batch)
	r.write(r.batch)
	clear(r.batch) // the requests go back to their pool
	r.mu.Lock()
	if len(r.queue) == 0 {
		r.leading = false
		r.idle.Broadcast()
		r.mu.Unlock()
		return
	}
	next := r.queue[0]
	r.mu.Unlock()
	next.done <- txnDone{lead: true} // its only message until it commits its own batch
	// The next leader is runnable on this processor, behind this goroutine, which would
	// otherwise first write its own response: let it commit now.
	runtime.Gosched()
}

// gatherLinger bounds how long a leader waits for requests announced by Expect, and
// gatherWindow how long, under load, it waits for its batch to be as large as the
// previous one.
const (
	gatherLinger = 200 * time.Microsecond
	gatherWindow = 500 * time.Microsecond
)

// gather waits, before the leader commits, for more requests to join the commit, but
// only under concurrency: after a commit of one transaction (a homeserver's one at a
// time) with nothing else announced, the leader commits at once. Under load the server
// is CPU-bound and a commit costs the same for one transaction or thirty, so the leader
// waits (woken by each arrival and each Expect's done) while requests announced by
// Expect are not queued yet, for at most gatherLinger, and, when the previous commit
// held several, until the batch is as large, for at most gatherWindow (PostgreSQL's
// commit_siblings, in spirit).
func (r *Recorder) gather() {
	// The flag is up before each count, so that an arrival after the count wakes it.
	r.gathering.Store(true)
	defer r.gathering.Store(false)
	var deadline time.Time
	for {
		r.mu.Lock()
		queued := len(r.queue)
		r.mu.Unlock()
		if queued >= r.maxBatch {
			return
		}
		short := r.last >= 2 && queued < r.last
		if !short && r.inflight.Load() <= int64(queued) {
			return
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(gatherLinger)
			if short {
				deadline = time.Now().Add(gatherWindow)
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		r.timer.Reset(wait)
		select {
		case <-r.arrived:
			r.timer.Stop()
		case <-r.timer.C:
		}
	}
}

// nudge wakes a gathering leader.
func (r *Recorder) nudge() {
	if r.gathering.Load() {
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
}

// Expect tells the recorder that a transaction is on its way (its body is being read and
// parsed), so that a commit about to start under concurrency waits a moment for it (see
// gather). Call the returned function once that request is done, recorded or not.
func (r *Recorder) Expect() (done func()) {
	r.inflight.Add(1)
	return r.expectDone
}

func (r *Recorder) expectDone() {
	r.inflight.Add(-1)
	r.nudge()
}

// Run waits until ctx is cancelled, then stops the recorder: requests already taken are
// committed and answered, later ones get ErrRecorderStopped.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.stopped)
	<-ctx.Done()
	r.mu.Lock()
	r.closing = true
	for r.leading {
		r.idle.Wait()
	}
	r.mu.Unlock()
	r.store.closeWriterStmts(r.ws)
}

// write commits a batch and answers each request; if the batch fails as a whole, each
// request is retried alone so one bad request cannot fail the others.
func (r *Recorder) write(batch []*txnReq) {
	ctx := context.Background()
	results, err := r.recordTxns(ctx, batch)
	if err == nil {
		for i, req := range batch {
			req.done <- txnDone{res: results[i]}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- txnDone{err: err}
		return
	}
	for _, req := range batch {
		res, err := r.recordTxns(ctx, []*txnReq{req})
		if err != nil {
			req.done <- txnDone{err: err}
			continue
		}
		req.done <- txnDone{res: res[0]}
	}
}

const (
	sqlInsertTxn = `INSERT INTO as_transactions (txn_id, event_count, processed_at) VALUES (?, ?, ?) ON CONFLICT (txn_id) DO NOTHING`
	// A membership event is kept only for rooms this server manages.
	sqlInsertMember = `INSERT INTO membership_events (event_id, room_id, state_key, sender, membership, received_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM matrix_rooms WHERE room_id = ?2)
		ON CONFLICT (event_id) DO NOTHING`
	sqlUpdateMember = `UPDATE matrix_room_members SET membership = ?1
		WHERE room_pk = (SELECT id FROM matrix_rooms WHERE room_id = ?2)
		  AND user_id = (SELECT user_id FROM matrix_user_profiles WHERE matrix_user_id = ?3)`
	// A room needs a re-sync when someone who should be in it left or was banned, or
	// someone who should not be in it joined or was invited.
	sqlDirtyRoom = `UPDATE matrix_rooms SET members_dirty = 1, next_attempt_at = 0
		WHERE room_id = ?1 AND state = 'active' AND ?3 != ?4 AND (
		  (?2 IN ('leave', 'ban') AND EXISTS (
		     SELECT 1 FROM matrix_user_profiles p
		     JOIN project_members pr ON pr.user_id = p.user_id AND pr.project_id = matrix_rooms.project_id
		     JOIN users u ON u.id = p.user_id AND u.is_active = 1
		     WHERE p.matrix_user_id = ?3))
		  OR
		  (?2 IN ('join', 'invite') AND NOT EXISTS (
		     SELECT 1 FROM matrix_user_profiles p
		     JOIN project_members pr ON pr.user_id = p.user_id AND pr.project_id = matrix_rooms.project_id
		     JOIN users u ON u.id = p.user_id AND u.is_active = 1
		     WHERE p.matrix_user_id = ?3)))`
	// The transactions and events counters move by the new ones; the last transaction's
	// time is set.
	sqlBumpCounters = `UPDATE counters SET value = CASE name WHEN ?1 THEN value + ?2 WHEN ?3 THEN value + ?4 ELSE ?6 END
		WHERE name IN (?1, ?3, ?5)`
	// A minute's mark: the transactions counter before the minute's first transaction,
	// written by the first commit of each minute, before the counters move.
	sqlMarkMinute = `INSERT INTO txn_marks (minute, before) SELECT ?, value FROM counters WHERE name = ?
		ON CONFLICT (minute) DO NOTHING`
	// A command's room, if managed and active, with its replies of the rate window and
	// whether this event already has one. room_id != '' lets the partial index serve.
	sqlCommandRoom = `SELECT m.id,
		(SELECT COUNT(*) FROM bot_outbox o WHERE o.room_pk = m.id AND o.created_at > ?2 AND o.kind = 'reply'),
		EXISTS (SELECT 1 FROM bot_outbox o WHERE o.room_pk = m.id AND o.command_event_id = ?3)
		FROM matrix_rooms m WHERE m.room_id = ?1 AND m.room_id != '' AND m.state = 'active'`
	sqlQueueReply = `INSERT INTO bot_outbox (uuid, kind, room_pk, room_id, command_event_id, command_sender, command_body, created_at)
		VALUES (?, 'reply', ?, ?, ?, ?, ?, ?) ON CONFLICT (room_pk, command_event_id) DO NOTHING`
)

// recordTxns writes a batch in one transaction and returns each request's result.
func (r *Recorder) recordTxns(ctx context.Context, batch []*txnReq) ([]TxnResult, error) {
	results := make([]TxnResult, len(batch))
	t := now()
	marked := false
	err := r.store.rawWrite(ctx, r.ws, func(tx rawTx) error {
		var newTxns, newEvents int64
		for i, req := range batch {
			n, err := tx.exec(sqlInsertTxn, req.rec.TxnID, req.rec.EventCount, t)
			if err != nil {
				return fmt.Errorf("db: record transaction: %w", err)
			}
			if n == 0 {
				continue // seen before (or earlier in this batch): process nothing again
			}
			results[i].New = true
			newTxns++
			newEvents += int64(req.rec.EventCount)
			for _, m := range req.rec.Members {
				n, err := tx.exec(sqlInsertMember, m.EventID, m.RoomID, m.StateKey, m.Sender, m.Membership, t)
				if err != nil {
					return fmt.Errorf("db: record membership event: %w", err)
				}
				if n == 0 {
					continue // not a managed room, or an event seen before
				}
				results[i].MemberRows++
				if _, err := tx.exec(sqlUpdateMember, m.Membership, m.RoomID, m.StateKey); err != nil {
					return fmt.Errorf("db: update member: %w", err)
				}
				n, err = tx.exec(sqlDirtyRoom, m.RoomID, m.Membership, m.StateKey, req.rec.BotUserID)
				if err != nil {
					return fmt.Errorf("db: mark room for re-sync: %w", err)
				}
				results[i].RoomsDirty += int(n)
			}
			if len(req.rec.Commands) > 0 {
				if err := queueCommandsTx(tx, &req.rec, &results[i], t); err != nil {
					return err
				}
			}
		}
		if newTxns == 0 {
			return nil
		}
		if t/60 != r.marked {
			if _, err := tx.exec(sqlMarkMinute, t/60, CounterTransactions); err != nil {
				return fmt.Errorf("db: mark the minute: %w", err)
			}
			marked = true
		}
		// One statement for the three counters: at one transaction per commit, each
		// statement saved is a few microseconds of the homeserver's wait.
		if _, err := tx.exec(sqlBumpCounters, CounterTransactions, newTxns, CounterEvents, newEvents, CounterLastTransactionAt, t); err != nil {
			return fmt.Errorf("db: bump the transaction counters: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if marked {
		r.marked = t / 60
	}
	return results, nil
}

// queueCommandsTx queues a reply for each command of rec that is to be answered, in the
// recorder's transaction: a command seen before (in this transaction or another) is not
// queued again, and one past the room's rate gets no answer.
func queueCommandsTx(tx rawTx, rec *TxnRecord, res *TxnResult, t int64) error {
	if rec.BotUserID == "" {
		return nil
	}
	windowStart := t - int64(ReplyRateWindow/time.Second)
	for _, c := range rec.Commands {
		if c.MsgType != "m.text" || c.Sender == rec.BotUserID || c.EventID == "" || c.RoomID == "" {
			continue
		}
		var roomPK int64
		var recent int64
		var seen bool
		err := tx.queryRow(sqlCommandRoom, []any{c.RoomID, windowStart, c.EventID}, &roomPK, &recent, &seen)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not a room this server manages, or not active
		}
		if err != nil {
			return fmt.Errorf("db: look up the room of a command: %w", err)
		}
		if seen {
			continue
		}
		if recent >= ReplyRateLimit {
			res.CommandsDropped++
			continue
		}
		n, err := tx.exec(sqlQueueReply, NewUUID(), roomPK, c.RoomID, c.EventID, c.Sender, truncate(c.Body, MaxOutboxBody), t)
		if err != nil {
			return fmt.Errorf("db: queue a command reply: %w", err)
		}
		if n > 0 {
			res.Commands++
		}
	}
	return nil
}

// TransactionSeen reports whether txnID is recorded (for tests and the dashboard).
func (s *Store) TransactionSeen(ctx context.Context, txnID string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM as_transactions WHERE txn_id = ?`, txnID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("db: look up transaction: %w", err)
	}
	return true, nil
}

// PruneTransactions deletes transaction rows and membership events older than before,
// in chunks so the writer is never held long; the counters stay. It returns rows deleted.
// Transactions are deleted in arrival order up to the first one young enough to keep.
func (s *Store) PruneTransactions(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	// Minute marks are only read for the last hour; keep two.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM txn_marks WHERE minute < ?`, time.Now().Add(-2*time.Hour).Unix()/60); err != nil {
		return 0, fmt.Errorf("db: prune transaction minutes: %w", err)
	}
	// The scan stops at the first young row, so it reads only what is deleted.
	var keep int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT id FROM as_transactions WHERE processed_at >= ?1 ORDER BY id LIMIT 1),
		(SELECT MAX(id) + 1 FROM as_transactions), 0)`, before.Unix()).Scan(&keep)
	if err != nil {
		return 0, fmt.Errorf("db: prune transactions: %w", err)
	}
	for _, c := range []struct {
		q   string
		arg int64
	}{
		{`DELETE FROM as_transactions WHERE id IN (SELECT id FROM as_transactions WHERE id < ? ORDER BY id LIMIT 5000)`, keep},
		{`DELETE FROM membership_events WHERE id IN (SELECT id FROM membership_events WHERE received_at < ? LIMIT 5000)`, before.Unix()},
	} {
		for {
			res, err := s.w.ExecContext(ctx, c.q, c.arg)
			if err != nil {
				return total, fmt.Errorf("db: prune transactions: %w", err)
			}
			n, _ := res.RowsAffected()
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// CountTransactionRows counts stored transaction rows with a full scan: for checks that
// the O(1) counter matches the table, not for pages.
func (s *Store) CountTransactionRows(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM as_transactions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count transactions: %w", err)
	}
	return n, nil
}
