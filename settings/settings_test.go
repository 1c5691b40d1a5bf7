package settings_test

import (
	"strings"
	"testing"

	"matrixas/settings"
)

// TestTableIsComplete: each setting says what the loader, the forms and --help need,
// names are unique, and every default passes its own format.
func TestTableIsComplete(t *testing.T) {
	envs, keys := map[string]bool{}, map[string]bool{}
	for _, s := range settings.All {
		name := s.Env + s.Key
		if s.Env == "" && s.Key == "" {
			t.Errorf("a setting has neither an environment variable nor a key: %+v", s)
		}
		if s.Env != "" {
			if envs[s.Env] {
				t.Errorf("%s is listed twice", s.Env)
			}
			envs[s.Env] = true
		}
		if s.Key != "" {
			if keys[s.Key] {
				t.Errorf("key %s is used twice", s.Key)
			}
			keys[s.Key] = true
		}
		if s.Hint == "" {
			t.Errorf("%s has no hint", name)
		}
		if s.Kind == settings.Runtime && (s.Key == "" || s.Label == "") {
			t.Errorf("runtime setting %s needs a key and a label", name)
		}
		if s.Editable && s.Kind != settings.Runtime {
			t.Errorf("%s is editable but not a runtime setting", name)
		}
		if s.Format != nil && s.Format.Want == "" {
			t.Errorf("%s's format does not say what it wants", name)
		}
		if d := s.Clean(s.Default); d != "" {
			if err := s.Validate(d); err != nil {
				t.Errorf("%s's default %q fails its own format: %v", name, s.Default, err)
			}
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		s     *settings.Setting
		value string
		ok    bool
	}{
		{settings.HomeserverURL, "https://matrix.example.org", true},
		{settings.HomeserverURL, "http://127.0.0.1:8008", true},
		{settings.HomeserverURL, "matrix.example.org", false},
		{settings.HomeserverURL, "ftp://matrix.example.org", false},
		{settings.HomeserverURL, "https://user:pw@matrix.example.org", false},
		{settings.HomeserverURL, "https://matrix.example.org/?x=1", false},
		{settings.HomeserverDomain, "example.org", true},
		{settings.HomeserverDomain, "localhost:8448", true},
		{settings.HomeserverDomain, "exa mple.org", false},
		{settings.HomeserverDomain, "example.org:70000", false},
		{settings.HomeserverDomain, "example.org:+80", false},
		{settings.SenderLocalpart, "waldur-bot", true},
		{settings.SenderLocalpart, "a.b=c/d_e", true},
		{settings.SenderLocalpart, ".*", false},
		{settings.SenderLocalpart, "Bot", false},
		{settings.RegistrationSecret, strings.Repeat("s", 1024), true},
		{settings.RegistrationSecret, strings.Repeat("s", 1025), false},
		{settings.ListenAddr, "0.0.0.0:8080", true},
		{settings.ListenAddr, "8080", false},
		{settings.LogLevel, "warn", true},
		{settings.LogLevel, "loud", false},
		{settings.LogFormat, "json", true},
		{settings.LogFormat, "xml", false},
		{settings.MaxBodyBytes, "1024", true},
		{settings.MaxBodyBytes, "1023", false},
		{settings.WebhookMaxBodyMB, "1024", true},
		{settings.WebhookMaxBodyMB, "1025", false},
		{settings.ProvisionBackoff, "500ms", true},
		{settings.ProvisionBackoff, "0s", false},
		{settings.ProvisionBackoff, "30", false},
		{settings.AutoCreateRooms, "YES", true},
		{settings.AutoCreateRooms, "sometimes", false},
		{settings.TrustedProxies, "10.0.0.0/8, 192.0.2.7", true},
		{settings.TrustedProxies, "10.0.0.0/8, proxy.local", false},
		{settings.SessionKey, strings.Repeat("k", 32), true},
		{settings.SessionKey, strings.Repeat("k", 31), false},
	}
	for _, tt := range tests {
		t.Run(tt.s.Env+tt.s.Key+"="+tt.value, func(t *testing.T) {
			err := tt.s.Validate(tt.s.Clean(tt.value))
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%q) = %v, want ok %v", tt.value, err, tt.ok)
			}
			if err != nil && err.Error() == "" {
				t.Error("the refusal has no message")
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		s         *settings.Setting
		in, clean string
	}{
		{settings.HomeserverURL, " https://matrix.example.org/ ", "https://matrix.example.org"},
		{settings.HomeserverDomain, " example.org ", "example.org"},
		{settings.RegistrationSecret, " spaces kept ", " spaces kept "}, // a secret is taken as typed
	}
	for _, tt := range tests {
		if got := tt.s.Clean(tt.in); got != tt.clean {
			t.Errorf("%s: Clean(%q) = %q, want %q", tt.s.Key, tt.in, got, tt.clean)
		}
	}
}
