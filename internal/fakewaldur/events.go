package fakewaldur

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Event is an event as the platform's web hooks send it: the payload
// {"created", "message", "context", "event_type"}.
type Event struct {
	Type    string
	Message string
	Created time.Time
	Context map[string]any
}

// Encoding is how a hook body is written.
type Encoding int

const (
	// JSON is a hook with content_type "json": requests.post(url, json=payload).
	JSON Encoding = iota
	// Form is a hook with content_type "form": requests.post(url, data=payload). Python
	// requests form-encodes a dict value by iterating it, which yields its keys: the
	// context arrives as its key names only (context=affected_user_uuid&context=...),
	// its values lost. This is what the platform really sends.
	Form
	// FormJSONContext is a form whose context field holds the context as JSON, as a
	// relay or another platform might send it.
	FormJSONContext
)

// isoformat writes a time as Python's aware datetime.isoformat() does: microseconds
// only when not zero, the offset as +00:00.
func isoformat(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

// Body returns the request body and content type the platform would send for ev.
func (ev Event) Body(enc Encoding) (contentType string, body []byte) {
	keys := make([]string, 0, len(ev.Context))
	for k := range ev.Context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if enc == JSON {
		// Python's json.dumps: keys in insertion order, ", " and ": " separators.
		var b bytes.Buffer
		b.WriteString(`{"created": `)
		writeJSON(&b, isoformat(ev.Created))
		b.WriteString(`, "message": `)
		writeJSON(&b, ev.Message)
		b.WriteString(`, "context": {`)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(&b, k)
			b.WriteString(": ")
			writeJSON(&b, ev.Context[k])
		}
		b.WriteString(`}, "event_type": `)
		writeJSON(&b, ev.Type)
		b.WriteByte('}')
		return "application/json", b.Bytes()
	}
	// urllib.parse.urlencode: quote_plus, pairs in order.
	pairs := []string{"created=" + url.QueryEscape(isoformat(ev.Created)), "message=" + url.QueryEscape(ev.Message)}
	if enc == Form {
		for _, k := range keys {
			pairs = append(pairs, "context="+url.QueryEscape(k))
		}
	} else {
		var b bytes.Buffer
		writeJSON(&b, ev.Context)
		pairs = append(pairs, "context="+url.QueryEscape(b.String()))
	}
	pairs = append(pairs, "event_type="+url.QueryEscape(ev.Type))
	return "application/x-www-form-urlencoded", []byte(strings.Join(pairs, "&"))
}

func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// Post sends ev to url as the platform's hook would, once (the platform never retries),
// and returns the answer's status.
func Post(ctx context.Context, client *http.Client, url string, enc Encoding, ev Event) (int, error) {
	ct, body := ev.Body(enc)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "python-requests/2.32.3")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Delivery is one post of an event to a registered hook.
type Delivery struct {
	HookUUID  string
	EventType string
	Status    int // 0 when the post failed
	Err       error
}

// eventGroups are the groups a hook may subscribe to, per event type prefix.
func eventGroups(eventType string) []string {
	switch {
	case strings.HasPrefix(eventType, "role_"):
		return []string{"permissions", "customers", "projects", "users"}
	case strings.HasPrefix(eventType, "project_"):
		return []string{"projects"}
	case strings.HasPrefix(eventType, "customer_"):
		return []string{"customers"}
	case strings.HasPrefix(eventType, "user_"):
		return []string{"users"}
	case strings.HasPrefix(eventType, "marketplace_order_"):
		return []string{"resources"}
	}
	return nil
}

// emit records ev and posts it to every active hook subscribed to it, in turn, like
// the platform (once, after the change). Call it without holding s.mu: a receiver may
// call the API back.
func (s *Server) emit(ev Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	deliver := s.deliver
	var hooks []Hook
	for _, h := range s.p.hooks {
		if !h.IsActive {
			continue
		}
		if slices.Contains(h.EventTypes, ev.Type) || slices.ContainsFunc(eventGroups(ev.Type), func(g string) bool { return slices.Contains(h.EventGroups, g) }) {
			hooks = append(hooks, h)
		}
	}
	s.mu.Unlock()
	if !deliver {
		return
	}
	for _, h := range hooks {
		enc := JSON
		if h.ContentType == "form" {
			enc = Form
		}
		ctx, cancel := withTimeout(10 * time.Second)
		status, err := Post(ctx, s.hc, h.DestinationURL, enc, ev)
		cancel()
		s.mu.Lock()
		s.deliveries = append(s.deliveries, Delivery{HookUUID: h.UUID, EventType: ev.Type, Status: status, Err: err})
		s.mu.Unlock()
	}
}

// SetDelivery turns the posting of events to registered hooks on (the default) or off.
// Events are recorded either way (Events).
func (s *Server) SetDelivery(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliver = on
}

// Events returns the events the fake's changes produced, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Deliveries returns the posts made to registered hooks, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// The events' contexts, with the keys the platform's event loggers write.

func (p *platform) actor(ctx map[string]any) map[string]any {
	ctx["user_uuid"] = staffUUID
	ctx["user_username"] = staffUsername
	ctx["user_full_name"] = staffName
	return ctx
}

func (p *platform) roleEvent(eventType string, pm *Permission) Event {
	ctx := p.actor(map[string]any{
		"scope_type":     pm.ScopeType,
		"structure_type": pm.ScopeType,
		"scope_uuid":     pm.ScopeUUID,
		"scope_name":     p.scopeName(pm),
		"customer_uuid":  pm.CustomerUUID,
		"role_name":      pm.Role,
	})
	if pm.ScopeType == "project" {
		ctx["project_uuid"] = pm.ScopeUUID
		ctx["project_name"] = p.scopeName(pm)
	}
	if c := p.customer(pm.CustomerUUID); c != nil {
		ctx["customer_name"] = c.Name
	}
	name := ""
	if u := p.user(pm.UserUUID); u != nil {
		ctx["affected_user_uuid"] = u.UUID
		ctx["affected_user_username"] = u.Username
		ctx["affected_user_full_name"] = u.FullName()
		name = u.Username
	} else {
		ctx["affected_user_uuid"] = pm.UserUUID
	}
	verb := map[string]string{"role_granted": "has been granted", "role_revoked": "has lost", "role_updated": "has an updated"}[eventType]
	return Event{Type: eventType, Created: p.clock, Context: ctx,
		Message: fmt.Sprintf("User %s %s role %s in %s %s.", name, verb, pm.Role, pm.ScopeType, p.scopeName(pm))}
}

func (p *platform) projectEvent(eventType string, pr *Project) Event {
	ctx := p.actor(map[string]any{"project_uuid": pr.UUID, "project_name": pr.Name, "customer_uuid": pr.CustomerUUID})
	if c := p.customer(pr.CustomerUUID); c != nil {
		ctx["customer_name"] = c.Name
		ctx["customer_abbreviation"] = c.Abbreviation
	}
	return Event{Type: eventType, Created: p.clock, Context: ctx,
		Message: fmt.Sprintf("Project %s has been %s.", pr.Name, strings.TrimSuffix(strings.TrimPrefix(eventType, "project_"), "_succeeded"))}
}

func (p *platform) customerEvent(eventType string, c *Customer) Event {
	return Event{Type: eventType, Created: p.clock,
		Context: p.actor(map[string]any{"customer_uuid": c.UUID, "customer_name": c.Name, "customer_abbreviation": c.Abbreviation}),
		Message: fmt.Sprintf("Customer %s has been %s.", c.Name, strings.TrimSuffix(strings.TrimPrefix(eventType, "customer_"), "_succeeded"))}
}

func (p *platform) userEvent(eventType string, u *User) Event {
	return Event{Type: eventType, Created: p.clock,
		Context: p.actor(map[string]any{"affected_user_uuid": u.UUID, "affected_user_username": u.Username,
			"affected_user_full_name": u.FullName(), "affected_user_email": u.Email}),
		Message: fmt.Sprintf("User %s: %s.", u.Username, strings.ReplaceAll(strings.TrimPrefix(eventType, "user_"), "_", " "))}
}

func (p *platform) orderEvent(eventType string, o *Order) Event {
	ctx := p.actor(map[string]any{"order_uuid": o.UUID, "order_state": o.State, "order_type": o.Type,
		"resource_name": o.ResourceName, "offering_name": o.OfferingName, "project_uuid": o.ProjectUUID})
	if pr := p.project(o.ProjectUUID); pr != nil {
		ctx["project_name"] = pr.Name
		ctx["customer_uuid"] = pr.CustomerUUID
	}
	return Event{Type: eventType, Created: p.clock, Context: ctx,
		Message: fmt.Sprintf("Marketplace order has been %s.", strings.TrimPrefix(eventType, "marketplace_order_"))}
}
