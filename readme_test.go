package main

import (
	"os"
	"strings"
	"testing"

	"matrixas/web"
)

// TestREADMEDocumentsConfiguration fails when a configuration variable or a subcommand is
// missing from README.md, so the documentation cannot fall behind the code.
func TestREADMEDocumentsConfiguration(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, e := range web.EnvVars {
		if !strings.Contains(readme, "| `"+e.Name+"` |") {
			t.Errorf("README.md's configuration table has no row for %s: add \"| `%s` | default | meaning |\"", e.Name, e.Name)
		}
		if e.Secret && !strings.Contains(readme, "`"+e.Name+"_FILE`") {
			t.Errorf("README.md does not mention %s_FILE", e.Name)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(readme, "| `"+c.usage+"` |") {
			t.Errorf("README.md's command table has no row for %q", c.usage)
		}
	}
}
