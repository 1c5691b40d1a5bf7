package matrix

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"matrixas/db"
)

// AppserviceID is the registration's id; the homeserver keys the appservice by it.
const AppserviceID = "waldur"

// AliasPrefix starts every room alias this appservice owns (#waldur-<project uuid>).
const AliasPrefix = "waldur-"

// WebhookPath is where the homeserver pushes transactions, relative to the appservice URL.
const WebhookPath = "/_matrix/app/v1/transactions/{txnId}"

// Namespace is one namespace entry of a registration.
type Namespace struct {
	Exclusive bool   `yaml:"exclusive" json:"exclusive"`
	Regex     string `yaml:"regex" json:"regex"`
}

// Namespaces are the user, alias and room namespaces; all three are always written,
// since some homeservers (Dendrite) fail on a missing list.
type Namespaces struct {
	Users   []Namespace `yaml:"users" json:"users"`
	Aliases []Namespace `yaml:"aliases" json:"aliases"`
	Rooms   []Namespace `yaml:"rooms" json:"rooms"`
}

// Registration is an appservice registration file.
type Registration struct {
	ID              string     `yaml:"id" json:"id"`
	URL             URL        `yaml:"url" json:"url"`
	ASToken         string     `yaml:"as_token" json:"as_token"`
	HSToken         string     `yaml:"hs_token" json:"hs_token"`
	SenderLocalpart string     `yaml:"sender_localpart" json:"sender_localpart"`
	RateLimited     bool       `yaml:"rate_limited" json:"rate_limited"`
	Namespaces      Namespaces `yaml:"namespaces" json:"namespaces"`
}

// URL is the registration's url: null when empty, as the spec writes "no url" (the
// homeserver then sends no transactions), rather than an empty string.
type URL string

// MarshalYAML writes null for an empty URL.
func (u URL) MarshalYAML() (any, error) {
	if u == "" {
		return nil, nil
	}
	return string(u), nil
}

// MarshalJSON writes null for an empty URL.
func (u URL) MarshalJSON() ([]byte, error) {
	if u == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(u))
}

// ErrNotSetUp is returned when the settings lack what a registration needs.
var ErrNotSetUp = errors.New("the appservice is not set up yet")

// BuildRegistration returns the registration for the current settings: the bot's user id
// exclusively, every other user of the domain non-exclusively (platform users are
// registered by the appservice), and the #waldur-* aliases exclusively.
func BuildRegistration(ms *db.MatrixSettings) (*Registration, error) {
	if ms.ASToken == "" || ms.HSToken == "" || ms.HomeserverDomain == "" || ms.SenderLocalpart == "" {
		return nil, ErrNotSetUp
	}
	domain := regexp.QuoteMeta(ms.HomeserverDomain)
	return &Registration{
		ID:              AppserviceID,
		URL:             URL(ms.AppserviceURL),
		ASToken:         ms.ASToken,
		HSToken:         ms.HSToken,
		SenderLocalpart: ms.SenderLocalpart,
		RateLimited:     false,
		Namespaces: Namespaces{
			Users: []Namespace{
				{Exclusive: true, Regex: "^@" + regexp.QuoteMeta(ms.SenderLocalpart) + ":" + domain + "$"},
				{Exclusive: false, Regex: "^@.*:" + domain + "$"},
			},
			Aliases: []Namespace{{Exclusive: true, Regex: "^#" + regexp.QuoteMeta(AliasPrefix) + "[^:]+:" + domain + "$"}},
			Rooms:   []Namespace{},
		},
	}, nil
}

// YAML renders the registration file, with a header comment saying what it is for.
func (r *Registration) YAML() (string, error) {
	b, err := yaml.Marshal(r)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("# Matrix appservice registration for \"" + r.ID + "\".\n")
	sb.WriteString("# Install it on the homeserver and restart it (Synapse: app_service_config_files;\n")
	sb.WriteString("# Dendrite: app_service_api.config_files). It holds secrets: keep it private.\n")
	sb.Write(b)
	return sb.String(), nil
}

// WebhookURL is where the homeserver sends transactions for an appservice at baseURL.
func WebhookURL(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + WebhookPath
}
