package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"matrixas/db"
	"matrixas/internal/testserver"
)

// TestBackupWhileServing backs up the live database while the webhook writes to it, then
// opens the copy and finds every row acknowledged before the backup started.
func TestBackupWhileServing(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "live.db")
	s := testserver.New(t, testserver.Options{DatabasePath: dbPath})
	var setup struct {
		HSToken string `json:"hs_token"`
	}
	s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, map[string]string{
		"url": "http://127.0.0.1:8080", "homeserver_url": "http://127.0.0.1:9", "homeserver_domain": "example.org", "user_registration_secret": "x",
	}, &setup)
	put := func(id string) {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/_matrix/app/v1/transactions/"+id, strings.NewReader(`{"events":[]}`))
		req.Header.Set("Authorization", "Bearer "+setup.HSToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("put %s: %v %v", id, resp, err)
			return
		}
		resp.Body.Close()
	}
	for i := range 200 {
		put(fmt.Sprintf("before-%d", i))
	}
	// Keep writing during the backup.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				put(fmt.Sprintf("during-%d", i))
			}
		}
	}()
	dest := filepath.Join(t.TempDir(), "backup.db")
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"DATABASE_PATH": dbPath}[k]
	}}
	err := run(context.Background(), env, []string{"backup", dest})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, errb.String())
	}

	restored, err := db.Open(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	ctx := context.Background()
	for i := range 200 {
		if ok, err := restored.TransactionSeen(ctx, fmt.Sprintf("before-%d", i)); err != nil || !ok {
			t.Fatalf("before-%d missing from the backup (%v)", i, err)
		}
	}
	counter, _ := restored.Counter(ctx, db.CounterTransactions)
	rows, _ := restored.CountTransactionRows(ctx)
	if counter != rows || rows < 200 {
		t.Errorf("backup is not consistent: counter %d rows %d", counter, rows)
	}
	if _, err := restored.UserByUsername(ctx, "staff"); err != nil {
		t.Errorf("users missing from the backup: %v", err)
	}
	// A second backup to the same file is refused rather than overwriting it.
	if err := run(ctx, env, []string{"backup", dest}); err == nil {
		t.Error("backup over an existing file succeeded")
	}
}

func TestRegistrationCommand(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "reg.db")
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"DATABASE_PATH": dbPath}[k]
	}}
	if err := run(context.Background(), env, []string{"registration"}); err == nil || !strings.Contains(err.Error(), "not set up") {
		t.Fatalf("before setup: %v", err)
	}
	s := testserver.New(t, testserver.Options{DatabasePath: dbPath})
	var setup struct {
		RegistrationYAML string `json:"registration_yaml"`
	}
	s.JSON(t, http.MethodPost, "/api/admin/matrix-appservice/setup/", s.StaffToken, map[string]string{
		"url": "http://127.0.0.1:8080", "homeserver_url": "http://127.0.0.1:9", "homeserver_domain": "example.org", "user_registration_secret": "x",
	}, &setup)
	out.Reset()
	if err := run(context.Background(), env, []string{"registration"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != setup.RegistrationYAML {
		t.Errorf("registration command printed:\n%s\nwant:\n%s", out.String(), setup.RegistrationYAML)
	}
}
