package waldur

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-json-experiment/json"
)

// Hook is a web hook registered on the platform. DestinationURL holds the receiver's
// secret: show it redacted.
type Hook struct {
	UUID           string
	DestinationURL string
	EventTypes     []string
	EventGroups    []string
	ContentType    string // "json" or "form"
	IsActive       bool
	AuthorUsername string
	Created        time.Time
}

type wireHook struct {
	UUID           string   `json:"uuid"`
	DestinationURL string   `json:"destination_url"`
	EventTypes     []string `json:"event_types"`
	EventGroups    []string `json:"event_groups"`
	ContentType    string   `json:"content_type"`
	IsActive       *bool    `json:"is_active"`
	AuthorUsername string   `json:"author_username"`
	Created        string   `json:"created"`
}

func (w *wireHook) hook() (Hook, error) {
	id, ok := NormalizeUUID(w.UUID)
	if !ok {
		return Hook{}, malformed("a web hook", "uuid", w.UUID)
	}
	h := Hook{UUID: id, DestinationURL: w.DestinationURL, EventTypes: w.EventTypes, EventGroups: w.EventGroups,
		ContentType: w.ContentType, IsActive: w.IsActive == nil || *w.IsActive, AuthorUsername: w.AuthorUsername}
	if w.Created != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Created)
		if err != nil {
			return Hook{}, malformed("web hook "+id, "created", w.Created)
		}
		h.Created = t
	}
	return h, nil
}

// RegisterHook creates a web hook that POSTs the given event types to destinationURL
// as JSON, and returns it as the platform registered it. The token's user must be
// staff (a hook sees what its owner may see). It is not retried on a 5xx or a lost
// answer, which could register it twice: look with Hooks before trying again.
func (c *Client) RegisterHook(ctx context.Context, destinationURL string, eventTypes []string) (Hook, error) {
	if u, err := url.Parse(destinationURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Hook{}, errors.New("waldur: the hook destination must be an absolute http(s) URL")
	}
	if len(eventTypes) == 0 {
		return Hook{}, errors.New("waldur: a hook needs at least one event type")
	}
	body, err := json.Marshal(struct {
		DestinationURL string   `json:"destination_url"`
		EventTypes     []string `json:"event_types"`
		ContentType    string   `json:"content_type"`
		IsActive       bool     `json:"is_active"`
	}{destinationURL, eventTypes, "json", true})
	if err != nil {
		return Hook{}, fmt.Errorf("waldur: encode the hook: %w", err)
	}
	var w wireHook
	err = c.do(ctx, http.MethodPost, c.endpoint("/api/hooks-web/", nil), body, func(resp *http.Response) error {
		return decodeObject(resp.Body, &w)
	})
	if err != nil {
		return Hook{}, err
	}
	return w.hook()
}

// Hooks lists the web hooks the token's user sees; with a destinationURL, only those
// posting there (to find one already registered for this receiver).
func (c *Client) Hooks(ctx context.Context, destinationURL string) ([]Hook, error) {
	q := url.Values{}
	if destinationURL != "" {
		q.Set("destination_url", destinationURL)
	}
	var out []Hook
	err := listPages(ctx, c, "/api/hooks-web/", q, func(w *wireHook) string { return w.UUID },
		func(w *wireHook) error {
			h, err := w.hook()
			if err != nil {
				return err
			}
			// The filter may match loosely on some versions: keep exact matches only.
			if destinationURL == "" || h.DestinationURL == destinationURL {
				out = append(out, h)
			}
			return nil
		})
	return out, err
}

// DeleteHook removes a web hook; one already gone is not an error.
func (c *Client) DeleteHook(ctx context.Context, uuid string) error {
	id, err := pathUUID("/api/hooks-web/", uuid)
	if err != nil {
		return err
	}
	err = c.do(ctx, http.MethodDelete, c.endpoint("/api/hooks-web/"+id+"/", nil), nil, func(*http.Response) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
