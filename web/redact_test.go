package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/settings"
)

func TestRedactingLogger(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	as, hs, secret := strings.Repeat("a1", 32), strings.Repeat("b2", 32), "registration-secret-x"
	st := db.NewSettings(store, map[string]string{settings.RegistrationSecret.Key: secret})
	if err := st.Set(ctx, map[string]string{settings.ASToken.Key: as, settings.HSToken.Key: hs}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := newRedactingLogger(slog.New(slog.NewJSONHandler(&buf, nil)), st)
	log = log.With("fixed", "token "+hs)
	log.Error("homeserver said Unknown token "+as,
		"error", errors.New("M_UNKNOWN_TOKEN: Unknown token "+as),
		"detail", "secret "+secret,
		slog.Group("g", "inner", hs),
		"count", 3)
	out := buf.String()
	for _, s := range []string{as, hs, secret} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret reached the log: %s", out)
		}
	}
	for _, want := range []string{`"count":3`, "M_UNKNOWN_TOKEN: Unknown token [redacted]", `"inner":"[redacted]"`, `"fixed":"token [redacted]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}
