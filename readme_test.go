package main

import (
	"os"
	"strings"
	"testing"

	"matrixas/settings"
)

// TestREADMEDocumentsConfiguration fails when a configuration variable or a subcommand is
// missing from README.md, so the documentation cannot fall behind the code.
func TestREADMEDocumentsConfiguration(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings.FromEnvironment() {
		if !strings.Contains(readme, "| `"+s.Env+"` |") {
			t.Errorf("README.md's configuration table has no row for %s: add \"| `%s` | default | meaning |\"", s.Env, s.Env)
		}
		if s.Secret && !strings.Contains(readme, "`"+s.FileEnv()+"`") {
			t.Errorf("README.md does not mention %s", s.FileEnv())
		}
	}
	for _, c := range commands() {
		if !strings.Contains(readme, "| `"+c.usage+"` |") {
			t.Errorf("README.md's command table has no row for %q", c.usage)
		}
	}
}
