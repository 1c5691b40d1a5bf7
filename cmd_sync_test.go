package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
)

// TestSyncCommand: --dry-run prints the differences and changes nothing; without it
// they are applied; a second run finds none; a failing platform changes nothing and
// says why; without WALDUR_URL it says what to set.
func TestSyncCommand(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	if err := c.run(ctx, "sync"); err == nil || !strings.Contains(err.Error(), "WALDUR_URL") {
		t.Fatalf("without a platform: %v", err)
	}
	f := fakewaldur.New(t)
	cu := f.AddCustomer(fakewaldur.Customer{Name: "Acme", Abbreviation: "ACME"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: cu.UUID})
	u := f.AddUser(fakewaldur.User{Username: "adam", FirstName: "Adam", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: p.UUID})
	c.env["WALDUR_URL"], c.env["WALDUR_TOKEN"] = f.URL, f.Token

	if err := c.run(ctx, "sync", "--dry-run"); err != nil {
		t.Fatalf("dry run: %v (%s)", err, c.stderr)
	}
	out := c.stdout.String()
	for _, want := range []string{
		"platform: " + f.URL,
		"project   create  " + p.UUID + ` "Apollo"`,
		"role      grant   PROJECT.ADMIN to",
		"4 differences (created/updated/removed): customers 1/0/0, users 1/0/0, projects 1/0/0, roles 1/0/0",
		"dry run: nothing changed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, f.Token) || strings.Contains(c.stderr.String(), f.Token) {
		t.Error("the token was printed")
	}
	s := c.store(t)
	if _, err := s.ProjectByUUID(ctx, p.UUID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a dry run wrote: %v", err)
	}

	if err := c.run(ctx, "sync"); err != nil {
		t.Fatalf("sync: %v (%s)", err, c.stderr)
	}
	if !strings.Contains(c.stdout.String(), "applied") {
		t.Errorf("output:\n%s", c.stdout)
	}
	got, err := s.ProjectByUUID(ctx, p.UUID)
	if err != nil || got.Source != db.SourceWaldur || got.MemberCount != 1 {
		t.Fatalf("project after sync: %+v, %v", got, err)
	}
	if err := c.run(ctx, "sync"); err != nil || !strings.Contains(c.stdout.String(), "0 differences") {
		t.Errorf("second sync: %v\n%s", err, c.stdout)
	}

	f.ExpireToken()
	err = c.run(ctx, "sync")
	if err == nil || !strings.Contains(err.Error(), "changed nothing: token rejected") {
		t.Errorf("expired token: %v", err)
	}
	if got, _ := s.ProjectByUUID(ctx, p.UUID); got == nil || got.MemberCount != 1 {
		t.Error("a failed sync changed the store")
	}
}
