package testserver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"matrixas/auth"
	"matrixas/internal/dendritetest"
	"matrixas/matrix"
	"matrixas/settings"
)

// ConnectDendrite makes s the appservice of a new real Dendrite, as setup and the
// homeserver's admin would: the appservice's settings (fresh tokens, domain localhost,
// bot waldur-bot, s's URL for transactions), Dendrite started with the registration
// file, and s pointed at it and enabled. The worker provisions the bot on its next
// cycle. Dendrite's data lives in memory (/dev/shm) when it can, which keeps tests
// quick; it stops at the end of the test. Callers call dendritetest.Require first.
func (s *Server) ConnectDendrite(t testing.TB) *dendritetest.Server {
	t.Helper()
	ctx := context.Background()
	st := s.Web.Settings()
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: dendritetest.DefaultServerName,
		settings.ASToken.Key:          auth.RandomHex(32),
		settings.HSToken.Key:          auth.RandomHex(32),
		settings.SenderLocalpart.Key:  "waldur-bot",
		settings.AppserviceURL.Key:    s.URL,
	}); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		t.Fatal(err)
	}
	y, err := reg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "matrixas-hs-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	regFile := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(regFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: filepath.Join(dir, "hs")})
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	return hs
}
