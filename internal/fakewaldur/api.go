package fakewaldur

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// answer makes the answer to a request already checked against the description.
func (s *Server) answer(r *http.Request, template string, params map[string]string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	q := r.URL.Query()
	base := "http://" + r.Host
	id := params["uuid"]
	get := r.Method == http.MethodGet
	switch {
	case template == "/api/customers/" && get:
		return p.listAnswer(r, len(p.customers), reversed(q), func(int) bool { return true },
			func(w *objWriter, i int) { p.writeCustomer(w, base, &p.customers[i]) })
	case template == "/api/customers/{uuid}/" && get:
		c := p.customer(id)
		if c == nil {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		return objectAnswer(http.StatusOK, func(w *objWriter) { w.sel = selection(q); p.writeCustomer(w, base, c) })
	case template == "/api/customers/{uuid}/list_users/" && get:
		if p.customer(id) == nil {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		return p.scopeUsers(r, id)
	case template == "/api/projects/" && get:
		return p.listProjects(r, base)
	case template == "/api/projects/{uuid}/" && get:
		pr := p.project(id)
		if pr == nil {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		return objectAnswer(http.StatusOK, func(w *objWriter) { w.sel = selection(q); p.writeProject(w, base, pr) })
	case template == "/api/projects/{uuid}/list_users/" && get:
		if pr := p.project(id); pr == nil || pr.Removed {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		return p.scopeUsers(r, id)
	case template == "/api/users/" && get:
		return p.listUsers(r, base)
	case template == "/api/users/{uuid}/" && get:
		u := p.user(id)
		if u == nil {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		return objectAnswer(http.StatusOK, func(w *objWriter) { w.sel = selection(q); p.writeUser(w, base, u) })
	case template == "/api/user-permissions/" && get:
		return p.listPermissions(r)
	case template == "/api/marketplace-resources/" && get:
		return p.listResources(r, base)
	case template == "/api/marketplace-orders/" && get:
		return p.listOrders(r, base)
	case template == "/api/events/" && get:
		return p.listAnswer(r, 0, false, func(int) bool { return false }, nil)
	case template == "/api/hooks-web/" && get:
		dest := q.Get("destination_url")
		active, activeSet := boolParam(q, "is_active")
		return p.listAnswer(r, len(p.hooks), false, func(i int) bool {
			h := &p.hooks[i]
			return (dest == "" || h.DestinationURL == dest) && (!activeSet || h.IsActive == active)
		}, func(w *objWriter, i int) { writeHook(w, base, &p.hooks[i]) })
	case template == "/api/hooks-web/" && r.Method == http.MethodPost:
		return p.createHook(r, base)
	case template == "/api/hooks-web/{uuid}/":
		i := slices.IndexFunc(p.hooks, func(h Hook) bool { return h.UUID == id })
		if i < 0 {
			return detailAnswer(http.StatusNotFound, "Not found.")
		}
		if r.Method == http.MethodDelete {
			p.hooks = slices.Delete(p.hooks, i, i+1)
			p.version++
			return answer{status: http.StatusNoContent, header: http.Header{}}
		}
		return objectAnswer(http.StatusOK, func(w *objWriter) { writeHook(w, base, &p.hooks[i]) })
	}
	return detailAnswer(http.StatusMethodNotAllowed, "Method not allowed.")
}

func (p *platform) listProjects(r *http.Request, base string) answer {
	q := r.URL.Query()
	modified, byModified := since(q, "modified")
	terminated, _ := boolParam(q, "include_terminated")
	removed, removedSet := boolParam(q, "is_removed")
	customers := map[string]bool{}
	for _, v := range q["customer"] {
		for _, c := range strings.Split(v, ",") {
			customers[c] = true
		}
	}
	return p.listAnswer(r, len(p.projects), reversed(q), func(i int) bool {
		pr := &p.projects[i]
		switch {
		case removedSet && pr.Removed != removed:
			return false
		case !removedSet && pr.Removed && !terminated:
			return false
		case byModified && pr.Modified.Before(modified):
			return false
		case len(customers) > 0 && !customers[pr.CustomerUUID]:
			return false
		}
		return true
	}, func(w *objWriter, i int) { p.writeProject(w, base, &p.projects[i]) })
}

func (p *platform) listUsers(r *http.Request, base string) answer {
	q := r.URL.Query()
	modified, byModified := since(q, "modified")
	active, activeSet := boolParam(q, "is_active")
	username := q.Get("username")
	return p.listAnswer(r, len(p.users), reversed(q), func(i int) bool {
		u := &p.users[i]
		return (!byModified || !u.Modified.Before(modified)) && (!activeSet || u.Active == active) &&
			(username == "" || u.Username == username)
	}, func(w *objWriter, i int) { p.writeUser(w, base, &p.users[i]) })
}

// listPermissions serves /api/user-permissions/: active grants only, as the platform.
func (p *platform) listPermissions(r *http.Request) answer {
	q := r.URL.Query()
	modified, byModified := since(q, "modified")
	created, byCreated := since(q, "created")
	user, scopeUUID, scopeType, roleName := q.Get("user"), q.Get("scope_uuid"), q.Get("scope_type"), q.Get("role_name")
	return p.listAnswer(r, len(p.perms), reversed(q), func(i int) bool {
		pm := &p.perms[i]
		return pm.Active && (!byModified || !pm.Modified.Before(modified)) && (!byCreated || !pm.Created.Before(created)) &&
			(user == "" || pm.UserUUID == user) && (scopeUUID == "" || pm.ScopeUUID == scopeUUID) &&
			(scopeType == "" || pm.ScopeType == scopeType) && (roleName == "" || strings.Contains(pm.Role, roleName))
	}, func(w *objWriter, i int) { p.writePermission(w, &p.perms[i]) })
}

// scopeUsers serves list_users of a customer or project: its active grants.
func (p *platform) scopeUsers(r *http.Request, scope string) answer {
	return p.listAnswer(r, len(p.perms), false, func(i int) bool {
		return p.perms[i].Active && p.perms[i].ScopeUUID == scope
	}, func(w *objWriter, i int) {
		pm := &p.perms[i]
		w.begin()
		w.str("uuid", pm.UUID)
		w.time("created", pm.Created)
		w.time("expiration_time", pm.Expiration)
		w.str("role_name", pm.Role)
		w.str("role_uuid", roleUUID(pm.Role))
		if u := p.user(pm.UserUUID); u != nil {
			if u.Email != "" {
				w.str("user_email", u.Email)
			}
			w.str("user_full_name", u.FullName())
			w.str("user_username", u.Username)
		}
		w.str("user_uuid", pm.UserUUID)
		w.str("created_by_full_name", staffName)
		w.str("created_by_uuid", staffUUID)
		w.end()
	})
}

func (p *platform) listResources(r *http.Request, base string) answer {
	q := r.URL.Query()
	project := q.Get("project_uuid")
	states := q["state"]
	return p.listAnswer(r, len(p.resources), reversed(q), func(i int) bool {
		rs := &p.resources[i]
		return (project == "" || rs.ProjectUUID == project) && (len(states) == 0 || slices.Contains(states, rs.State))
	}, func(w *objWriter, i int) {
		rs := &p.resources[i]
		w.begin()
		w.str("url", base+"/api/marketplace-resources/"+rs.UUID+"/")
		w.str("uuid", rs.UUID)
		w.str("name", rs.Name)
		w.str("state", rs.State)
		w.str("offering_name", rs.OfferingName)
		w.str("project_uuid", rs.ProjectUUID)
		if pr := p.project(rs.ProjectUUID); pr != nil {
			w.str("project_name", pr.Name)
			w.str("customer_uuid", pr.CustomerUUID)
		}
		w.time("created", rs.Created)
		w.time("modified", rs.Modified)
		w.end()
	})
}

func (p *platform) listOrders(r *http.Request, base string) answer {
	q := r.URL.Query()
	project := q.Get("project_uuid")
	states := q["state"]
	return p.listAnswer(r, len(p.orders), reversed(q), func(i int) bool {
		o := &p.orders[i]
		return (project == "" || o.ProjectUUID == project) && (len(states) == 0 || slices.Contains(states, o.State))
	}, func(w *objWriter, i int) {
		o := &p.orders[i]
		w.begin()
		w.str("url", base+"/api/marketplace-orders/"+o.UUID+"/")
		w.str("uuid", o.UUID)
		w.str("state", o.State)
		w.str("type", o.Type)
		w.str("resource_name", o.ResourceName)
		w.str("offering_name", o.OfferingName)
		w.str("project_uuid", o.ProjectUUID)
		if pr := p.project(o.ProjectUUID); pr != nil {
			w.str("project_name", pr.Name)
			w.str("customer_uuid", pr.CustomerUUID)
		}
		w.str("created_by_username", o.CreatedByUsername)
		w.str("created_by_full_name", o.CreatedByFullName)
		w.time("created", o.Created)
		w.time("modified", o.Modified)
		w.end()
	})
}

func (p *platform) writeCustomer(w *objWriter, base string, c *Customer) {
	w.begin()
	w.str("url", base+"/api/customers/"+c.UUID+"/")
	w.str("uuid", c.UUID)
	w.time("created", c.Created)
	w.str("display_name", c.Name)
	w.str("name", c.Name)
	w.str("native_name", "")
	w.str("abbreviation", c.Abbreviation)
	w.boolean("archived", c.Archived)
	w.boolean("blocked", false)
	w.str("backend_id", "")
	w.str("description", "")
	w.end()
}

func (p *platform) writeProject(w *objWriter, base string, pr *Project) {
	w.begin()
	w.str("url", base+"/api/projects/"+pr.UUID+"/")
	w.str("uuid", pr.UUID)
	w.str("name", pr.Name)
	w.str("customer", base+"/api/customers/"+pr.CustomerUUID+"/")
	w.str("customer_uuid", pr.CustomerUUID)
	if c := p.customer(pr.CustomerUUID); c != nil {
		w.str("customer_name", c.Name)
		w.str("customer_abbreviation", c.Abbreviation)
	}
	w.str("description", pr.Description)
	w.time("created", pr.Created)
	w.null("type")
	w.str("backend_id", "")
	w.null("start_date")
	w.null("end_date")
	w.boolean("is_removed", pr.Removed)
	w.str("kind", "default")
	w.end()
}

func (p *platform) writeUser(w *objWriter, base string, u *User) {
	w.begin()
	w.str("url", base+"/api/users/"+u.UUID+"/")
	w.str("uuid", u.UUID)
	w.str("username", u.Username)
	w.str("full_name", u.FullName())
	w.str("native_name", "")
	if u.Email != "" {
		w.str("email", u.Email)
	}
	w.str("first_name", u.FirstName)
	w.str("last_name", u.LastName)
	w.boolean("is_active", u.Active)
	w.boolean("is_staff", u.Staff)
	w.boolean("is_support", false)
	w.null("civil_number")
	w.str("registration_method", "default")
	w.time("date_joined", u.Created)
	w.null("token_lifetime")
	w.str("preferred_language", "en")
	w.end()
}

func (p *platform) writePermission(w *objWriter, pm *Permission) {
	w.begin()
	w.str("user_uuid", pm.UserUUID)
	if u := p.user(pm.UserUUID); u != nil {
		w.str("user_name", u.FullName())
	}
	w.time("created", pm.Created)
	w.time("expiration_time", pm.Expiration)
	w.str("created_by_full_name", staffName)
	w.str("created_by_username", staffUsername)
	w.str("role_name", pm.Role)
	w.str("role_description", "")
	w.str("role_uuid", roleUUID(pm.Role))
	w.str("scope_type", pm.ScopeType)
	w.str("scope_uuid", pm.ScopeUUID)
	w.str("scope_name", p.scopeName(pm))
	if pm.CustomerUUID != "" {
		w.str("customer_uuid", pm.CustomerUUID)
	}
	if c := p.customer(pm.CustomerUUID); c != nil {
		w.str("customer_name", c.Name)
	}
	w.end()
}

func writeHook(w *objWriter, base string, h *Hook) {
	w.begin()
	w.str("url", base+"/api/hooks-web/"+h.UUID+"/")
	w.str("uuid", h.UUID)
	w.boolean("is_active", h.IsActive)
	w.str("author_uuid", staffUUID)
	w.strings("event_types", h.EventTypes)
	w.strings("event_groups", h.EventGroups)
	w.time("created", h.Created)
	w.time("modified", h.Modified)
	w.str("hook_type", "webhook")
	w.str("author_fullname", staffName)
	w.str("author_username", staffUsername)
	w.str("author_email", staffEmail)
	w.str("destination_url", h.DestinationURL)
	w.str("content_type", h.ContentType)
	w.end()
}

// createHook registers a web hook from a body already checked against WebHookRequest.
func (p *platform) createHook(r *http.Request, base string) answer {
	var req struct {
		DestinationURL string   `json:"destination_url"`
		EventTypes     []string `json:"event_types"`
		EventGroups    []string `json:"event_groups"`
		ContentType    string   `json:"content_type"`
		IsActive       *bool    `json:"is_active"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return detailAnswer(http.StatusBadRequest, "JSON parse error.")
	}
	if len(req.EventTypes) == 0 && len(req.EventGroups) == 0 {
		return objectAnswer(http.StatusBadRequest, func(w *objWriter) {
			w.begin()
			w.strings("non_field_errors", []string{"Please specify list of event_types or event_groups."})
			w.end()
		})
	}
	if u, err := url.Parse(req.DestinationURL); err != nil || !u.IsAbs() {
		return objectAnswer(http.StatusBadRequest, func(w *objWriter) {
			w.begin()
			w.strings("destination_url", []string{"Enter a valid URL."})
			w.end()
		})
	}
	h := Hook{DestinationURL: req.DestinationURL, EventTypes: req.EventTypes, EventGroups: req.EventGroups,
		ContentType: req.ContentType, IsActive: req.IsActive == nil || *req.IsActive}
	if h.ContentType == "" {
		h.ContentType = "json"
	}
	if h.EventTypes == nil {
		h.EventTypes = []string{}
	}
	if h.EventGroups == nil {
		h.EventGroups = []string{}
	}
	p.stamp(&h.UUID, &h.Created, &h.Modified)
	p.hooks = append(p.hooks, h)
	return objectAnswer(http.StatusCreated, func(w *objWriter) { writeHook(w, base, &h) })
}

// Hooks returns the web hooks registered through the API.
func (s *Server) Hooks() []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Hook, len(s.p.hooks))
	for i, h := range s.p.hooks {
		h.EventTypes = slices.Clone(h.EventTypes)
		h.EventGroups = slices.Clone(h.EventGroups)
		out[i] = h
	}
	return out
}
