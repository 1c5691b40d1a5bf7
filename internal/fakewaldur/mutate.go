package fakewaldur

import (
	"slices"
	"time"
)

// change runs f under the lock and then posts the events it returns.
func (s *Server) change(f func(p *platform) []Event) {
	s.mu.Lock()
	events := f(s.p)
	s.mu.Unlock()
	for _, ev := range events {
		s.emit(ev)
	}
}

// AddCustomer adds a customer (customer_creation_succeeded) and returns it as stored.
func (s *Server) AddCustomer(c Customer) Customer {
	s.change(func(p *platform) []Event {
		p.stamp(&c.UUID, &c.Created, &c.Modified)
		p.customerAt[c.UUID] = len(p.customers)
		p.customers = append(p.customers, c)
		return []Event{p.customerEvent("customer_creation_succeeded", &c)}
	})
	return c
}

// UpdateCustomer changes a customer (customer_update_succeeded); false when unknown.
func (s *Server) UpdateCustomer(uuid string, change func(*Customer)) bool {
	found := false
	s.change(func(p *platform) []Event {
		c := p.customer(uuid)
		if c == nil {
			return nil
		}
		found = true
		change(c)
		c.UUID, c.Modified = uuid, p.tick()
		return []Event{p.customerEvent("customer_update_succeeded", c)}
	})
	return found
}

// DeleteCustomer deletes a customer, removing its projects and revoking every grant on
// them and on it (role_revoked, project_deletion_succeeded, customer_deletion_succeeded).
func (s *Server) DeleteCustomer(uuid string) bool {
	found := false
	s.change(func(p *platform) []Event {
		c := p.customer(uuid)
		if c == nil {
			return nil
		}
		found = true
		var events []Event
		for i := range p.projects {
			if pr := &p.projects[i]; pr.CustomerUUID == uuid && !pr.Removed {
				events = append(events, p.removeProject(pr)...)
			}
		}
		events = append(events, p.revokeWhere(func(pm *Permission) bool { return pm.ScopeUUID == uuid })...)
		gone := *c
		p.customers = slices.DeleteFunc(p.customers, func(x Customer) bool { return x.UUID == uuid })
		p.reindex()
		return append(events, p.customerEvent("customer_deletion_succeeded", &gone))
	})
	return found
}

// AddProject adds a project (project_creation_succeeded) and returns it as stored.
func (s *Server) AddProject(pr Project) Project {
	s.change(func(p *platform) []Event {
		p.stamp(&pr.UUID, &pr.Created, &pr.Modified)
		p.projectAt[pr.UUID] = len(p.projects)
		p.projects = append(p.projects, pr)
		return []Event{p.projectEvent("project_creation_succeeded", &pr)}
	})
	return pr
}

// UpdateProject changes a project (project_update_succeeded); false when unknown.
func (s *Server) UpdateProject(uuid string, change func(*Project)) bool {
	found := false
	s.change(func(p *platform) []Event {
		pr := p.project(uuid)
		if pr == nil {
			return nil
		}
		found = true
		change(pr)
		pr.UUID, pr.Modified = uuid, p.tick()
		return []Event{p.projectEvent("project_update_succeeded", pr)}
	})
	return found
}

// RemoveProject deletes a project as the platform does: soft (is_removed), its grants
// revoked (role_revoked each), then project_deletion_succeeded. It leaves the default
// project list. False when unknown or already removed.
func (s *Server) RemoveProject(uuid string) bool {
	found := false
	s.change(func(p *platform) []Event {
		pr := p.project(uuid)
		if pr == nil || pr.Removed {
			return nil
		}
		found = true
		return p.removeProject(pr)
	})
	return found
}

func (p *platform) removeProject(pr *Project) []Event {
	events := p.revokeWhere(func(pm *Permission) bool { return pm.ScopeUUID == pr.UUID })
	pr.Removed, pr.Modified = true, p.tick()
	return append(events, p.projectEvent("project_deletion_succeeded", pr))
}

// AddUser adds a user (user_creation_succeeded) and returns it as stored.
func (s *Server) AddUser(u User) User {
	s.change(func(p *platform) []Event {
		p.stamp(&u.UUID, &u.Created, &u.Modified)
		p.userAt[u.UUID] = len(p.users)
		p.users = append(p.users, u)
		return []Event{p.userEvent("user_creation_succeeded", &u)}
	})
	return u
}

// UpdateUser changes a user: user_activated or user_deactivated when Active changed,
// else user_update_succeeded. False when unknown.
func (s *Server) UpdateUser(uuid string, change func(*User)) bool {
	found := false
	s.change(func(p *platform) []Event {
		u := p.user(uuid)
		if u == nil {
			return nil
		}
		found = true
		was := u.Active
		change(u)
		u.UUID, u.Modified = uuid, p.tick()
		switch {
		case was && !u.Active:
			return []Event{p.userEvent("user_deactivated", u)}
		case !was && u.Active:
			return []Event{p.userEvent("user_activated", u)}
		}
		return []Event{p.userEvent("user_update_succeeded", u)}
	})
	return found
}

// DeleteUser deletes a user and revokes their grants (role_revoked each, then
// user_deletion_succeeded).
func (s *Server) DeleteUser(uuid string) bool {
	found := false
	s.change(func(p *platform) []Event {
		u := p.user(uuid)
		if u == nil {
			return nil
		}
		found = true
		events := p.revokeWhere(func(pm *Permission) bool { return pm.UserUUID == uuid })
		gone := *u
		p.users = slices.DeleteFunc(p.users, func(x User) bool { return x.UUID == uuid })
		p.reindex()
		return append(events, p.userEvent("user_deletion_succeeded", &gone))
	})
	return found
}

// Grant adds an active grant (role_granted) and returns it as stored; CustomerUUID is
// filled from the scope. Granting a role the user already holds on the scope returns
// the existing grant.
func (s *Server) Grant(pm Permission) Permission {
	s.change(func(p *platform) []Event {
		if old := p.findPerm(pm.UserUUID, pm.Role, pm.ScopeUUID); old != nil {
			pm = *old
			return nil
		}
		if pm.CustomerUUID == "" {
			switch pm.ScopeType {
			case "customer":
				pm.CustomerUUID = pm.ScopeUUID
			case "project":
				if pr := p.project(pm.ScopeUUID); pr != nil {
					pm.CustomerUUID = pr.CustomerUUID
				}
			}
		}
		pm.Active = true
		p.stamp(&pm.UUID, &pm.Created, &pm.Modified)
		p.permAt[pm.UUID] = len(p.perms)
		p.perms = append(p.perms, pm)
		return []Event{p.roleEvent("role_granted", &pm)}
	})
	return pm
}

// Revoke ends a user's active grant of role on a scope (role_revoked); false when
// there is none.
func (s *Server) Revoke(userUUID, role, scopeUUID string) bool {
	found := false
	s.change(func(p *platform) []Event {
		events := p.revokeWhere(func(pm *Permission) bool {
			return pm.UserUUID == userUUID && pm.Role == role && pm.ScopeUUID == scopeUUID
		})
		found = len(events) > 0
		return events
	})
	return found
}

func (p *platform) revokeWhere(match func(*Permission) bool) []Event {
	var events []Event
	for i := range p.perms {
		if pm := &p.perms[i]; pm.Active && match(pm) {
			pm.Active, pm.Modified = false, p.tick()
			events = append(events, p.roleEvent("role_revoked", pm))
		}
	}
	return events
}

// SetExpiration changes when an active grant expires (role_updated); zero removes the
// expiration. The grant stays listed after it expires, as on the platform until its
// periodic task runs. False when there is no such grant.
func (s *Server) SetExpiration(userUUID, role, scopeUUID string, at time.Time) bool {
	found := false
	s.change(func(p *platform) []Event {
		pm := p.findPerm(userUUID, role, scopeUUID)
		if pm == nil {
			return nil
		}
		found = true
		pm.Expiration, pm.Modified = at, p.tick()
		return []Event{p.roleEvent("role_updated", pm)}
	})
	return found
}

// AddResource adds a marketplace resource (no event: the worker does not follow them).
func (s *Server) AddResource(r Resource) Resource {
	s.change(func(p *platform) []Event {
		p.stamp(&r.UUID, &r.Created, &r.Modified)
		p.resources = append(p.resources, r)
		return nil
	})
	return r
}

// AddOrder adds a marketplace order (marketplace_order_created).
func (s *Server) AddOrder(o Order) Order {
	s.change(func(p *platform) []Event {
		p.stamp(&o.UUID, &o.Created, &o.Modified)
		p.orderAt[o.UUID] = len(p.orders)
		p.orders = append(p.orders, o)
		return []Event{p.orderEvent("marketplace_order_created", &o)}
	})
	return o
}

// orderEventTypes is the event each order state change sends.
var orderEventTypes = map[string]string{
	"executing": "marketplace_order_approved",
	"done":      "marketplace_order_completed",
	"rejected":  "marketplace_order_rejected",
	"erred":     "marketplace_order_failed",
	"canceled":  "marketplace_order_terminated",
}

// SetOrderState moves an order to a state, with the event the platform sends for it
// (approved for executing, completed for done, rejected, failed for erred, terminated
// for canceled; none for the pending states). False when unknown.
func (s *Server) SetOrderState(uuid, state string) bool {
	found := false
	s.change(func(p *platform) []Event {
		i, ok := p.orderAt[uuid]
		if !ok {
			return nil
		}
		found = true
		o := &p.orders[i]
		o.State, o.Modified = state, p.tick()
		if t, ok := orderEventTypes[state]; ok {
			return []Event{p.orderEvent(t, o)}
		}
		return nil
	})
	return found
}
