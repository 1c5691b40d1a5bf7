package matrix

import (
	"strings"

	"matrixas/db"
	"matrixas/settings"
)

// Redacted replaces a secret in text shown to people or logs.
const Redacted = "[redacted]"

// Secrets returns the values that must never be shown: those of the secret runtime
// settings (both tokens, the registration secret; empty ones left out).
func Secrets(ms *db.MatrixSettings) []string {
	var out []string
	for _, s := range settings.RuntimeSettings() {
		if v := ms.Value(s); s.Secret && len(v) >= 4 { // a shorter value would redact ordinary words
			out = append(out, v)
		}
	}
	return out
}

// Redact removes every secret from s. Homeservers echo tokens in error messages
// (Dendrite: "Unknown token <as_token>"), so any text from a homeserver passes here
// before it is stored, shown or logged.
func Redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}
