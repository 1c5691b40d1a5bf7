package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/settings"
	"matrixas/views"
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

// TestREADMEPowerLevels keeps the README's "Roles and power levels" table in step with
// the one rule in db.
func TestREADMEPowerLevels(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, role := range []string{db.RoleAdmin, db.RoleCustomerOwner, db.RoleManager, db.RoleMember} {
		row := fmt.Sprintf("| `%s` | %d |", role, db.RolePowerLevel(role))
		if !strings.Contains(readme, row) {
			t.Errorf("README.md's power level table lacks %q", row)
		}
	}
	if row := fmt.Sprintf("| staff who joined through the room's join action | %d |", db.MemberPowerLevel("", true)); !strings.Contains(readme, row) {
		t.Errorf("README.md's power level table lacks %q", row)
	}
	if row := fmt.Sprintf("| the bot | %d |", db.BotPowerLevel); !strings.Contains(readme, row) {
		t.Errorf("README.md's power level table lacks %q", row)
	}
}

// TestDocsNameOnePathAndOneButton: the README, docs/OPERATIONS.md and the Setup page
// install the registration file at the same path and name the bot's button alike, and
// no doc names another registration file path.
func TestDocsNameOnePathAndOneButton(t *testing.T) {
	otherPath := regexp.MustCompile(`/etc/[\w./-]*(waldur|registration)[\w./-]*\.yaml`)
	for _, doc := range []string{"README.md", "docs/OPERATIONS.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{views.RegistrationPath, "**" + views.RetryBotLabel + "**"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not say %q", doc, want)
			}
		}
		for _, p := range otherPath.FindAllString(text, -1) {
			if p != views.RegistrationPath {
				t.Errorf("%s names the registration file %s, not %s", doc, p, views.RegistrationPath)
			}
		}
	}
}
