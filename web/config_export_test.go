package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"matrixas/web"
)

func TestLoadExportConfig(t *testing.T) {
	const key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=" // 32 bytes
	keyFile := filepath.Join(t.TempDir(), "export.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := "c2hvcnQga2V5" // "short key": 9 bytes
	shortFile := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(shortFile, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c web.ExportConfig)
		wantErr string // substring naming the variable; "" = valid
	}{
		{"unset: the defaults", nil, func(t *testing.T, c web.ExportConfig) {
			if c.Key != nil || c.Dir != "" || c.Enabled || c.Media || c.Hour != 2 || c.RetentionDays != 90 || c.Concurrency != 2 {
				t.Errorf("defaults %+v", c)
			}
		}, ""},
		{"all set", map[string]string{"EXPORT_ENCRYPTION_KEY": key, "EXPORT_DIR": "/srv/exports", "MATRIX_HISTORY_EXPORT_ENABLED": "true",
			"MATRIX_HISTORY_EXPORT_HOUR": "0", "MATRIX_HISTORY_EXPORT_RETENTION_DAYS": "0", "MATRIX_EXPORT_MEDIA": "yes", "EXPORT_CONCURRENCY": "4"},
			func(t *testing.T, c web.ExportConfig) {
				if c.Key == nil || c.Dir != "/srv/exports" || !c.Enabled || !c.Media || c.Hour != 0 || c.RetentionDays != 0 || c.Concurrency != 4 {
					t.Errorf("config %+v", c)
				}
			}, ""},
		{"key from a file", map[string]string{"EXPORT_ENCRYPTION_KEY_FILE": keyFile}, func(t *testing.T, c web.ExportConfig) {
			if c.Key == nil {
				t.Error("no key read from the file")
			}
		}, ""},
		{"key too short", map[string]string{"EXPORT_ENCRYPTION_KEY": short}, nil, "EXPORT_ENCRYPTION_KEY: the key decodes to 9 bytes"},
		{"key not base64", map[string]string{"EXPORT_ENCRYPTION_KEY": "not a key!"}, nil, "EXPORT_ENCRYPTION_KEY: the key is not standard base64"},
		{"short key in a file", map[string]string{"EXPORT_ENCRYPTION_KEY_FILE": shortFile}, nil, "EXPORT_ENCRYPTION_KEY_FILE: the key decodes to 9 bytes"},
		{"both the key and its file", map[string]string{"EXPORT_ENCRYPTION_KEY": key, "EXPORT_ENCRYPTION_KEY_FILE": keyFile}, nil, "EXPORT_ENCRYPTION_KEY and EXPORT_ENCRYPTION_KEY_FILE"},
		{"hour 24", map[string]string{"MATRIX_HISTORY_EXPORT_HOUR": "24"}, nil, "MATRIX_HISTORY_EXPORT_HOUR"},
		{"negative retention", map[string]string{"MATRIX_HISTORY_EXPORT_RETENTION_DAYS": "-1"}, nil, "MATRIX_HISTORY_EXPORT_RETENTION_DAYS"},
		{"not a boolean", map[string]string{"MATRIX_HISTORY_EXPORT_ENABLED": "daily"}, nil, "MATRIX_HISTORY_EXPORT_ENABLED"},
		{"media not a boolean", map[string]string{"MATRIX_EXPORT_MEDIA": "some"}, nil, "MATRIX_EXPORT_MEDIA"},
		{"no concurrency", map[string]string{"EXPORT_CONCURRENCY": "0"}, nil, "EXPORT_CONCURRENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := web.LoadConfig(envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				for _, secret := range []string{short, "not a key!"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error echoes the key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.Export)
		})
	}
}
