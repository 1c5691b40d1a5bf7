package web_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"matrixas/settings"
	"matrixas/web"
)

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := web.LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &web.Config{
		ListenAddr:                "127.0.0.1:8080",
		DatabasePath:              "./data/matrixas.db",
		LogLevel:                  slog.LevelInfo,
		LogFormat:                 "text",
		MaxBodyBytes:              1 << 20,
		WebhookBodyMB:             16,
		BootstrapUsername:         "admin",
		DiagnosticsConnectTimeout: 3 * time.Second,
		DiagnosticsRequestTimeout: 2 * time.Second,
		TransactionsStaleAfter:    24 * time.Hour,
		TransactionRetention:      720 * time.Hour,
	}
	want.Provision = cfg.Provision // the provisioning worker's settings have their own tests
	want.Export = cfg.Export       // so do the history exports' (config_export_test.go)
	want.Platform = web.PlatformConfig{SyncInterval: 15 * time.Minute}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	for k, v := range cfg.FixedSettings() {
		if v != "" {
			t.Errorf("default config fixes setting %s = %q", k, v)
		}
	}
}

func TestLoadConfigValues(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	keyFile := filepath.Join(dir, "key")
	key := strings.Repeat("k", 40)
	if err := os.WriteFile(secretFile, []byte("s3cret with spaces \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(key+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *web.Config)
	}{
		{"listen address and database", map[string]string{"LISTEN_ADDR": "0.0.0.0:9000", "DATABASE_PATH": "/data/x.db"}, func(t *testing.T, c *web.Config) {
			if c.ListenAddr != "0.0.0.0:9000" || c.DatabasePath != "/data/x.db" {
				t.Errorf("got %q %q", c.ListenAddr, c.DatabasePath)
			}
		}},
		{"public URL loses its trailing slash", map[string]string{"PUBLIC_URL": "https://bridge.example.org/"}, func(t *testing.T, c *web.Config) {
			if c.PublicURL != "https://bridge.example.org" {
				t.Errorf("PublicURL %q", c.PublicURL)
			}
		}},
		{"log settings, spaces trimmed", map[string]string{"LOG_LEVEL": " debug ", "LOG_FORMAT": "json"}, func(t *testing.T, c *web.Config) {
			if c.LogLevel != slog.LevelDebug || c.LogFormat != "json" {
				t.Errorf("got %v %q", c.LogLevel, c.LogFormat)
			}
		}},
		{"limits", map[string]string{"MAX_BODY_BYTES": "2048", "WEBHOOK_MAX_BODY_MB": "1024"}, func(t *testing.T, c *web.Config) {
			if c.MaxBodyBytes != 2048 || c.WebhookBodyMB != 1024 {
				t.Errorf("got %d %d", c.MaxBodyBytes, c.WebhookBodyMB)
			}
		}},
		{"durations", map[string]string{"DIAGNOSTICS_CONNECT_TIMEOUT": "500ms", "DIAGNOSTICS_REQUEST_TIMEOUT": "1m", "TRANSACTIONS_STALE_AFTER": "2h30m", "TRANSACTION_RETENTION": "48h"}, func(t *testing.T, c *web.Config) {
			if c.DiagnosticsConnectTimeout != 500*time.Millisecond || c.DiagnosticsRequestTimeout != time.Minute || c.TransactionsStaleAfter != 150*time.Minute || c.TransactionRetention != 48*time.Hour {
				t.Errorf("got %v %v %v %v", c.DiagnosticsConnectTimeout, c.DiagnosticsRequestTimeout, c.TransactionsStaleAfter, c.TransactionRetention)
			}
		}},
		{"homeserver settings fix the stored ones", map[string]string{
			"MATRIX_HOMESERVER_URL": "http://dendrite:8008/", "MATRIX_HOMESERVER_PUBLIC_URL": "https://matrix.example.org",
			"MATRIX_HOMESERVER_DOMAIN": "example.org:8448", "MATRIX_USER_REGISTRATION_SECRET": "direct-secret",
		}, func(t *testing.T, c *web.Config) {
			want := map[string]string{"homeserver_url": "http://dendrite:8008", "homeserver_public_url": "https://matrix.example.org",
				"homeserver_domain": "example.org:8448", "user_registration_secret": "direct-secret"}
			if got := c.FixedSettings(); !reflect.DeepEqual(got, want) {
				t.Errorf("FixedSettings %v, want %v", got, want)
			}
		}},
		{"registration secret from a file", map[string]string{"MATRIX_USER_REGISTRATION_SECRET_FILE": secretFile}, func(t *testing.T, c *web.Config) {
			if got := c.FixedSettings()["user_registration_secret"]; got != "s3cret with spaces " {
				t.Errorf("registration secret %q", got)
			}
		}},
		{"session key directly", map[string]string{"SESSION_KEY": key}, func(t *testing.T, c *web.Config) {
			if string(c.SessionKey) != key {
				t.Errorf("SessionKey %q", c.SessionKey)
			}
		}},
		{"session key from a file", map[string]string{"SESSION_KEY_FILE": keyFile}, func(t *testing.T, c *web.Config) {
			if string(c.SessionKey) != key {
				t.Errorf("SessionKey %q", c.SessionKey)
			}
		}},
		{"bootstrap user", map[string]string{"BOOTSTRAP_USERNAME": "root", "BOOTSTRAP_PASSWORD_FILE": "/run/secrets/pw"}, func(t *testing.T, c *web.Config) {
			if c.BootstrapUsername != "root" || c.BootstrapPasswordFile != "/run/secrets/pw" {
				t.Errorf("got %q %q", c.BootstrapUsername, c.BootstrapPasswordFile)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := web.LoadConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestLoadConfigBadValues checks that each bad value fails the start with a message
// naming its variable (and never echoing a secret).
func TestLoadConfigBadValues(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name, value string
		want        string // substring of the message besides the variable's name
	}{
		{"LISTEN_ADDR", "8080", "not host:port"},
		{"LISTEN_ADDR", "localhost", "not host:port"},
		{"DATABASE_PATH", "   ", "must not be empty"},
		{"PUBLIC_URL", "bridge.example.org", "absolute http(s) URL"},
		{"PUBLIC_URL", "ftp://bridge.example.org", "absolute http(s) URL"},
		{"PUBLIC_URL", "https://bridge.example.org/?x=1", "absolute http(s) URL"},
		{"LOG_LEVEL", "loud", "not debug, info, warn or error"},
		{"LOG_FORMAT", "xml", "not text or json"},
		{"MAX_BODY_BYTES", "lots", "at least 1024"},
		{"MAX_BODY_BYTES", "100", "at least 1024"},
		{"MAX_BODY_BYTES", "-5000", "at least 1024"},
		{"WEBHOOK_MAX_BODY_MB", "0", "from 1 to 1024"},
		{"WEBHOOK_MAX_BODY_MB", "2048", "from 1 to 1024"},
		{"WEBHOOK_MAX_BODY_MB", "1.5", "from 1 to 1024"},
		{"MATRIX_HOMESERVER_URL", "localhost:8008", "absolute http(s) URL"},
		{"MATRIX_HOMESERVER_URL", "https://user:pw@matrix.example.org", "absolute http(s) URL"},
		{"MATRIX_HOMESERVER_PUBLIC_URL", "//matrix.example.org", "absolute http(s) URL"},
		{"MATRIX_HOMESERVER_DOMAIN", "example.org:http", "hostname with an optional :port"},
		{"MATRIX_HOMESERVER_DOMAIN", "exa mple.org", "hostname with an optional :port"},
		{"MATRIX_HOMESERVER_DOMAIN", "example.org:70000", "hostname with an optional :port"},
		{"SESSION_KEY", "too-short-key", "at least 32 bytes"},
		{"SESSION_KEY_FILE", missing, "no such file"},
		{"MATRIX_USER_REGISTRATION_SECRET_FILE", missing, "no such file"},
		{"DIAGNOSTICS_CONNECT_TIMEOUT", "3", "positive duration"},
		{"DIAGNOSTICS_REQUEST_TIMEOUT", "-2s", "positive duration"},
		{"TRANSACTIONS_STALE_AFTER", "0s", "positive duration"},
		{"TRANSACTION_RETENTION", "a month", "positive duration"},
		{"WALDUR_URL", "waldur.example.org", "absolute http(s) URL"},
		{"WALDUR_SYNC_INTERVAL", "30s", "at least 1m"},
		{"WALDUR_SYNC_INTERVAL", "often", "at least 1m"},
		{"WALDUR_EVENTS_SECRET", "short", "at least 16 characters"},
		{"WALDUR_TOKEN", "has a space", "without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := web.LoadConfig(envOf(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.name, tt.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.name+":") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to name %s and say %q", msg, tt.name, tt.want)
			}
			if (strings.Contains(tt.name, "SESSION_KEY") || tt.name == "WALDUR_TOKEN" || tt.name == "WALDUR_EVENTS_SECRET") && strings.Contains(msg, tt.value) && !strings.HasSuffix(tt.name, "_FILE") {
				t.Errorf("error %q echoes the secret", msg)
			}
		})
	}
}

// TestLoadConfigPlatform: the platform's variables are read, the token also from its
// file, and the rules between them stop the start naming the variable, never the
// secret's value.
func TestLoadConfigPlatform(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("file-token-abc123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := web.LoadConfig(envOf(map[string]string{"WALDUR_URL": "https://waldur.example.org/", "WALDUR_TOKEN_FILE": tokenFile,
		"WALDUR_SYNC_INTERVAL": "1h", "WALDUR_EVENTS_SECRET": "sixteen-chars-or-more"}))
	if err != nil {
		t.Fatal(err)
	}
	want := web.PlatformConfig{URL: "https://waldur.example.org", Token: "file-token-abc123", SyncInterval: time.Hour, EventsSecret: "sixteen-chars-or-more"}
	if cfg.Platform != want || !cfg.Platform.Enabled() {
		t.Errorf("platform %+v, want %+v", cfg.Platform, want)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WALDUR_URL": "https://waldur.example.org"}, "WALDUR_TOKEN: must be set"},
		{map[string]string{"WALDUR_TOKEN": "secret-token-value"}, "WALDUR_URL: must be set"},
		{map[string]string{"WALDUR_EVENTS_SECRET": "secret-events-value"}, "WALDUR_EVENTS_SECRET: the event receiver needs WALDUR_URL"},
	} {
		_, err := web.LoadConfig(envOf(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret-token-value") || strings.Contains(err.Error(), "secret-events-value")) {
			t.Errorf("the error echoes a secret: %v", err)
		}
	}
}

func TestLoadConfigReportsEveryBadValue(t *testing.T) {
	_, err := web.LoadConfig(envOf(map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "LISTEN_ADDR": "nope"}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, name := range []string{"LOG_LEVEL", "LOG_FORMAT", "LISTEN_ADDR"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadConfigSecretAndFileBothSet(t *testing.T) {
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte(strings.Repeat("f", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SESSION_KEY", "MATRIX_USER_REGISTRATION_SECRET", "WALDUR_TOKEN", "WALDUR_EVENTS_SECRET"} {
		_, err := web.LoadConfig(envOf(map[string]string{name: strings.Repeat("v", 40), name + "_FILE": f}))
		if err == nil || !strings.Contains(err.Error(), name+" and "+name+"_FILE") {
			t.Errorf("%s and %s_FILE both set: %v, want an error naming both", name, name, err)
		}
	}
}

// TestEnvVarsListsWhatLoadConfigReads keeps the documented list (the settings table that
// README and --help show) and the
// variables actually read in step.
func TestEnvVarsListsWhatLoadConfigReads(t *testing.T) {
	read := map[string]bool{}
	if _, err := web.LoadConfig(func(k string) string { read[k] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, s := range settings.FromEnvironment() {
		documented[s.Env] = true
		if s.Secret {
			documented[s.FileEnv()] = true
		}
		if s.Hint == "" {
			t.Errorf("%s has no help text", s.Env)
		}
	}
	for k := range read {
		if !documented[k] {
			t.Errorf("LoadConfig reads %s, which the settings table does not document", k)
		}
	}
	for k := range documented {
		if !read[k] {
			t.Errorf("the settings table documents %s, which LoadConfig never reads", k)
		}
	}
}
