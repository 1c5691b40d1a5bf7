package db

import (
	"context"
	"testing"

	"matrixas/settings"
)

// TestSettingsResolveEveryRuntimeSetting: each runtime setting of the table resolves
// through Matrix().Value, the environment first, then the database, then its default;
// the fields of MatrixSettings agree with Value.
func TestSettingsResolveEveryRuntimeSetting(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	defer s.Close()
	fixed := map[string]string{settings.HomeserverDomain.Key: "env.example.org"}
	st := NewSettings(s, fixed)
	stored := map[string]string{}
	for _, rs := range settings.RuntimeSettings() {
		if _, ok := fixed[rs.Key]; !ok {
			stored[rs.Key] = "stored-" + rs.Key
		}
	}
	stored[settings.SenderLocalpart.Key] = "" // empty: its default applies
	if err := st.Set(ctx, stored); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range settings.RuntimeSettings() {
		want := stored[rs.Key]
		switch {
		case fixed[rs.Key] != "":
			want = fixed[rs.Key]
		case want == "":
			want = rs.Default
		}
		if got := ms.Value(rs); got != want {
			t.Errorf("Value(%s) = %q, want %q", rs.Key, got, want)
		}
	}
	if ms.HomeserverDomain != "env.example.org" || !ms.Fixed[settings.HomeserverDomain.Key] || ms.SenderLocalpart != settings.SenderLocalpart.Default ||
		ms.ASToken != "stored-as_token" || ms.Enabled {
		t.Errorf("fields disagree with the values: %+v", ms)
	}
	if err := st.Set(ctx, map[string]string{settings.HomeserverDomain.Key: "db.example.org"}); err == nil {
		t.Error("a setting the environment fixes was written")
	}
}
