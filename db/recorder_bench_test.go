package db

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkRecord measures recording a transaction durably, with the background
// checkpointer as the server runs it: one caller at a time (a commit each, inline, as with
// a homeserver's one transaction at a time), and 32 at once (group commit).
func BenchmarkRecord(b *testing.B) {
	for _, par := range []int{1, 32} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			s, err := Open(context.Background(), b.TempDir()+"/b.db")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rec := s.NewRecorder(256)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, 2)
			go func() { rec.Run(ctx); done <- struct{}{} }()
			go func() { s.NewCheckpointer(CheckpointOptions{}).Run(ctx); done <- struct{}{} }() // as the server runs it
			defer func() { cancel(); <-done; <-done }()
			var n atomic.Int64
			record := func() bool {
				id := fmt.Sprintf("run-t1-%d", n.Add(1))
				finish := rec.Expect()
				res, err := rec.Record(context.Background(), TxnRecord{TxnID: id, EventCount: 10})
				finish()
				if err != nil || !res.New {
					b.Errorf("record %s: %v %v", id, res, err)
					return false
				}
				return true
			}
			b.ReportAllocs()
			if par == 1 {
				for b.Loop() {
					if !record() {
						return
					}
				}
			} else {
				b.SetParallelism(par / runtime.GOMAXPROCS(0)) // goroutines = GOMAXPROCS × this
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() && record() {
					}
				})
			}
			b.StopTimer()
			if got, _ := s.Counter(context.Background(), CounterTransactions); got != n.Load() {
				b.Fatalf("counter %d, recorded %d", got, n.Load())
			}
		})
	}
}
