package bot

import (
	"context"
	"fmt"
	"testing"
	"time"

	"matrixas/internal/fakewaldur"
	"matrixas/waldur"
)

// TestWaldurPlatform: !status and !orders read through the platform client against the
// fake platform (checked against the platform's API description): the project's own
// resources and orders only, the counts from the platform's totals, and a platform that
// fails answered in words.
func TestWaldurPlatform(t *testing.T) {
	if WaldurPlatform(nil) != nil {
		t.Fatal("no client must mean no platform (a nil interface), so answers say none is connected")
	}
	f := fakewaldur.New(t)
	c, err := waldur.New(waldur.Config{URL: f.URL, Token: f.Token, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	customer := f.AddCustomer(fakewaldur.Customer{Name: "Org"})
	project := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: customer.UUID})
	other := f.AddProject(fakewaldur.Project{Name: "Other", CustomerUUID: customer.UUID})
	for i := range 7 {
		f.AddResource(fakewaldur.Resource{Name: fmt.Sprintf("vm-%d", i), State: "Erred", OfferingName: "VM", ProjectUUID: project.UUID})
	}
	f.AddResource(fakewaldur.Resource{Name: "new", State: "Creating", OfferingName: "VM", ProjectUUID: project.UUID})
	f.AddResource(fakewaldur.Resource{Name: "theirs", State: "Updating", OfferingName: "VM", ProjectUUID: other.UUID})
	day := func(d int) time.Time { return time.Date(2026, 3, d, 10, 0, 0, 0, time.UTC) }
	f.AddOrder(fakewaldur.Order{State: "done", Type: "Create", ResourceName: "vm_0", OfferingName: "VM", ProjectUUID: project.UUID,
		CreatedByUsername: "ann", CreatedByFullName: "Ann A", Created: day(2)})
	f.AddOrder(fakewaldur.Order{State: "pending-consumer", Type: "Update", ResourceName: "vm-1", OfferingName: "VM", ProjectUUID: project.UUID,
		CreatedByUsername: "ben", Created: day(3)})
	f.AddOrder(fakewaldur.Order{State: "pending-provider", Type: "Create", OfferingName: "VM", ProjectUUID: other.UUID, Created: day(4)})

	p := WaldurPlatform(c)
	orders, total, err := p.ProjectOrders(context.Background(), project.UUID, nil, 5)
	if err != nil || total != 2 || len(orders) != 2 {
		t.Fatalf("orders %+v (total %d) %v", orders, total, err)
	}
	if o := orders[0]; o.State != "pending-consumer" || o.CreatedBy != "ben" || !o.Created.Equal(day(3)) {
		t.Errorf("newest order %+v: want pending-consumer by ben (the username, without a full name) on day 3", o)
	}
	if o := orders[1]; o.CreatedBy != "Ann A" || o.ResourceName != "vm_0" {
		t.Errorf("older order %+v: want vm_0 by Ann A (the full name)", o)
	}

	b, dir := newTestBot(p)
	dir.room.ProjectUUID = project.UUID
	ctx := context.Background()
	for _, tt := range []struct{ text, want string }{
		{"!status", "**Apollo \\<11\\>**\n\n" +
			"- Errored resources (7): vm-0, vm-1, vm-2, vm-3, vm-4 +2 more\n" +
			"- Orders waiting for approval: 1\n" +
			"- Resources in progress: 1 being created"},
		{"!orders", "**Apollo \\<11\\>**: last orders\n\n" +
			"- pending-consumer, Update, vm-1, 2026-03-03\n" +
			"- done, Create, vm\\_0, 2026-03-02"},
	} {
		if got := b.Answer(ctx, 7, alice, tt.text); got != tt.want {
			t.Errorf("%s\n got %q\nwant %q", tt.text, got, tt.want)
		}
	}

	f.Inject(fakewaldur.Fault{Path: "/api/marketplace-orders/", Status: 500})
	if got, want := b.Answer(ctx, 7, alice, "!orders"), "**Apollo \\<11\\>**\n\nThe platform could not be read; please try again later."; got != want {
		t.Errorf("platform error: %q, want %q", got, want)
	}
}
