package waldur

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// EventKind is what an event is about, which decides what the worker re-reads.
type EventKind string

// The kinds of events the worker handles; everything else is EventOther (counted and
// ignored).
const (
	EventRole     EventKind = "role"
	EventProject  EventKind = "project"
	EventCustomer EventKind = "customer"
	EventUser     EventKind = "user"
	EventOrder    EventKind = "order"
	EventOther    EventKind = "other"
)

// eventKinds classifies the event types the hook subscribes to. Role events come from
// customer, project and offering scopes alike: ScopeType tells them apart.
var eventKinds = map[string]EventKind{
	"role_granted": EventRole,
	"role_revoked": EventRole,
	"role_updated": EventRole,

	"project_creation_succeeded": EventProject,
	"project_update_succeeded":   EventProject,
	"project_deletion_succeeded": EventProject,

	"customer_creation_succeeded": EventCustomer,
	"customer_update_succeeded":   EventCustomer,
	"customer_deletion_succeeded": EventCustomer,

	"user_creation_succeeded":       EventUser,
	"user_update_succeeded":         EventUser,
	"user_details_update_succeeded": EventUser,
	"user_activated":                EventUser,
	"user_deactivated":              EventUser,
	"user_deletion_succeeded":       EventUser,

	"marketplace_order_created":    EventOrder,
	"marketplace_order_approved":   EventOrder,
	"marketplace_order_completed":  EventOrder,
	"marketplace_order_rejected":   EventOrder,
	"marketplace_order_failed":     EventOrder,
	"marketplace_order_terminated": EventOrder,
}

// HookEventTypes are the event types RegisterHook should subscribe to: every type the
// worker handles (all are in the API's EventTypesEnum).
var HookEventTypes = func() []string {
	out := make([]string, 0, len(eventKinds))
	for t := range eventKinds {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}()

// KindOf classifies an event type.
func KindOf(eventType string) EventKind {
	if k, ok := eventKinds[eventType]; ok {
		return k
	}
	if strings.HasPrefix(eventType, "marketplace_order_") {
		return EventOrder
	}
	return EventOther
}

// Event is one event the platform pushed to the hook, with the ids its context
// carries. UUIDs are normalised; one that is absent or not a uuid is empty. Events are
// hints: the worker re-reads the objects they name, so order and repeats do not matter.
type Event struct {
	Type    string // event_type, e.g. "role_revoked"
	Kind    EventKind
	Created time.Time // zero when absent or unreadable
	Message string

	ProjectUUID  string
	CustomerUUID string
	// UserUUID is the user the event is about (affected_user_uuid): the one who gained
	// or lost a role, or was created, changed, (de)activated or deleted. A user event
	// without affected_user_uuid falls back to user_uuid (re-reading one user too many
	// is harmless); a role event never does, its user_uuid is whoever granted.
	UserUUID string
	// ActorUUID is who did it (user_uuid in the context), when the platform says.
	ActorUUID string
	// ScopeType and ScopeUUID are the scope of a role event ("project", "customer", or
	// another scope such as "offering", which the directory does not mirror).
	ScopeType string
	ScopeUUID string
	RoleName  string

	UserUsername string // affected_user_username, for notices
	UserFullName string // affected_user_full_name
	ProjectName  string
	CustomerName string
	OrderUUID    string
	ResourceUUID string

	// HasContext is false when the body carried no context values. The platform's
	// form-encoded hooks send the context dict through Python requests' form encoder,
	// which writes only the dict's key names (context=project_uuid&context=...): such
	// an event names no object, and the worker falls back to an incremental run.
	// Hooks registered by RegisterHook are JSON, which keeps everything.
	HasContext bool
}

// ErrBadEvent is a body that is not an event: neither a JSON object nor a form, or
// without an event_type. The receiver answers it with 400.
var ErrBadEvent = errors.New("not a platform event")

// ParseEvent reads a hook body: {"created", "message", "context", "event_type"} as JSON,
// or the same fields form-encoded (context then a JSON object in one field, or the
// bare key names Waldur's form encoding leaves). contentType is the request's
// Content-Type header. Only the shape is strict; values that cannot be used are left
// empty, because the platform sends each event once and never again.
func ParseEvent(contentType string, body []byte) (Event, error) {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		media = ""
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case media == "application/x-www-form-urlencoded":
		return parseFormEvent(body)
	case media == "application/json" || strings.HasSuffix(media, "+json"),
		len(trimmed) > 0 && trimmed[0] == '{':
		return parseJSONEvent(body)
	case media == "":
		return parseFormEvent(body)
	default:
		return Event{}, fmt.Errorf("%w: content type %q (want JSON or a form)", ErrBadEvent, media)
	}
}

var lenient = []json.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

func parseJSONEvent(body []byte) (Event, error) {
	var raw struct {
		Created   jsontext.Value `json:"created"`
		Message   jsontext.Value `json:"message"`
		Context   jsontext.Value `json:"context"`
		EventType jsontext.Value `json:"event_type"`
	}
	if err := json.Unmarshal(body, &raw, lenient...); err != nil {
		return Event{}, fmt.Errorf("%w: the body is not a JSON object", ErrBadEvent)
	}
	var ev Event
	if err := json.Unmarshal(raw.EventType, &ev.Type, lenient...); err != nil || ev.Type == "" {
		return Event{}, fmt.Errorf("%w: event_type is missing or not a string", ErrBadEvent)
	}
	ev.Created = parseEventTime(stringValue(raw.Created))
	ev.Message = stringValue(raw.Message)
	if raw.Context.Kind() == '{' {
		ev.setContext(raw.Context)
	}
	ev.finish()
	return ev, nil
}

func parseFormEvent(body []byte) (Event, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Event{}, fmt.Errorf("%w: the body is not a form", ErrBadEvent)
	}
	ev := Event{Type: form.Get("event_type"), Message: form.Get("message"), Created: parseEventTime(form.Get("created"))}
	if ev.Type == "" {
		return Event{}, fmt.Errorf("%w: event_type is missing", ErrBadEvent)
	}
	if ctx := form["context"]; len(ctx) == 1 && strings.HasPrefix(strings.TrimSpace(ctx[0]), "{") {
		ev.setContext(jsontext.Value(ctx[0]))
	}
	ev.finish()
	return ev, nil
}

// setContext reads the string values of a context object; other values are skipped.
func (ev *Event) setContext(v jsontext.Value) {
	var ctx map[string]any
	if err := json.Unmarshal(v, &ctx, lenient...); err != nil {
		return
	}
	ev.HasContext = true
	s := func(k string) string { v, _ := ctx[k].(string); return v }
	id := func(k string) string { v, _ := NormalizeUUID(s(k)); return v }
	ev.ProjectUUID, ev.CustomerUUID = id("project_uuid"), id("customer_uuid")
	ev.UserUUID, ev.ActorUUID = id("affected_user_uuid"), id("user_uuid")
	ev.ScopeType, ev.ScopeUUID, ev.RoleName = s("scope_type"), id("scope_uuid"), s("role_name")
	if ev.ScopeType == "" {
		ev.ScopeType = s("structure_type") // older releases name it so
	}
	ev.UserUsername, ev.UserFullName = s("affected_user_username"), s("affected_user_full_name")
	ev.ProjectName, ev.CustomerName = s("project_name"), s("customer_name")
	ev.OrderUUID, ev.ResourceUUID = id("order_uuid"), id("resource_uuid")
}

// finish classifies the event and fills what follows from the rest.
func (ev *Event) finish() {
	ev.Kind = KindOf(ev.Type)
	if ev.Kind == EventUser && ev.UserUUID == "" {
		ev.UserUUID = ev.ActorUUID
	}
	if ev.Kind == EventRole && ev.ScopeUUID == "" {
		switch ev.ScopeType {
		case string(ScopeProject):
			ev.ScopeUUID = ev.ProjectUUID
		case string(ScopeCustomer):
			ev.ScopeUUID = ev.CustomerUUID
		}
	}
}

func stringValue(v jsontext.Value) string {
	var s string
	if v.Kind() != '"' || json.Unmarshal(v, &s, lenient...) != nil {
		return ""
	}
	return s
}

// parseEventTime reads the platform's isoformat(): with an offset, or naive (UTC).
func parseEventTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}
