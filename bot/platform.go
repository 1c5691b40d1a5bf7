package bot

import (
	"context"

	"matrixas/waldur"
)

// WaldurPlatform is the Platform of a connected Waldur: !status and !orders read its
// marketplace resources and orders live through c (one request per number shown). It
// returns nil when c is nil, so that a Config without a platform says so in its answers.
func WaldurPlatform(c *waldur.Client) Platform {
	if c == nil {
		return nil
	}
	return waldurPlatform{c}
}

// waldurPlatform adapts the platform client to what the bot reads.
type waldurPlatform struct{ c *waldur.Client }

var _ Platform = waldurPlatform{}

// ProjectResources reads up to limit of a project's resources in the given states.
func (p waldurPlatform) ProjectResources(ctx context.Context, projectUUID string, states []string, limit int) ([]Resource, int, error) {
	ws := make([]waldur.ResourceState, len(states))
	for i, s := range states {
		ws[i] = waldur.ResourceState(s)
	}
	page, err := p.c.ProjectResources(ctx, projectUUID, ws, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Resource, len(page.Items))
	for i, r := range page.Items {
		out[i] = Resource{Name: r.Name, State: string(r.State), OfferingName: r.OfferingName}
	}
	return out, page.Total, nil
}

// ProjectOrders reads up to limit of a project's orders in the given states, newest first.
func (p waldurPlatform) ProjectOrders(ctx context.Context, projectUUID string, states []string, limit int) ([]Order, int, error) {
	ws := make([]waldur.OrderState, len(states))
	for i, s := range states {
		ws[i] = waldur.OrderState(s)
	}
	page, err := p.c.ProjectOrders(ctx, projectUUID, ws, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Order, len(page.Items))
	for i, o := range page.Items {
		by := o.CreatedByFullName
		if by == "" {
			by = o.CreatedByUsername
		}
		out[i] = Order{State: string(o.State), Type: o.Type, ResourceName: o.ResourceName, OfferingName: o.OfferingName,
			CreatedBy: by, Created: o.Created}
	}
	return out, page.Total, nil
}
