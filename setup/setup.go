// Package setup is the appservice setup that the JSON API and the dashboard's Setup page
// share: it validates a request against the current settings, stores the homeserver
// fields not configured yet, rotates both tokens, enables the appservice, builds the
// registration file, and provisions the bot, best effort (MATRIX.md section 4).
package setup

import (
	"context"
	"database/sql"
	"maps"
	"net/http"
	"slices"
	"strings"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/matrix"
	"matrixas/settings"
)

// Input is the seed's MatrixAppserviceSetupRequest; empty means "not given".
type Input struct {
	URL                 string
	SenderLocalpart     string
	HomeserverURL       string
	HomeserverPublicURL string
	HomeserverDomain    string
	RegistrationSecret  string
}

// InputFrom reads a request's fields (JSON or form) into an Input: values trimmed, the
// secret taken as typed.
func InputFrom(f map[string]string) Input {
	t := func(k string) string { return strings.TrimSpace(f[k]) }
	return Input{
		URL:                 t("url"),
		SenderLocalpart:     t("sender_localpart"),
		HomeserverURL:       t("homeserver_url"),
		HomeserverPublicURL: t("homeserver_public_url"),
		HomeserverDomain:    t("homeserver_domain"),
		RegistrationSecret:  f["user_registration_secret"], // a secret is taken as typed
	}
}

// Result is the seed's setup response.
type Result struct {
	RegistrationYAML   string       `json:"registration_yaml"`
	ASToken            string       `json:"as_token"`
	HSToken            string       `json:"hs_token"`
	SenderLocalpart    string       `json:"sender_localpart"`
	WebhookURL         string       `json:"webhook_url"`
	BotProvisionStatus db.BotStatus `json:"bot_provision_status"`
}

// Invalid is a request setup refuses because a value it gives is malformed: messages by
// request field, in the API's {"field": ["message"]} shape.
type Invalid map[string][]string

func (v Invalid) add(field, msg string) { v[field] = append(v[field], msg) }

// Error lists the fields refused.
func (v Invalid) Error() string {
	fields := slices.Sorted(maps.Keys(v))
	return "setup refused: invalid " + strings.Join(fields, ", ")
}

// MissingError refuses a setup whose prerequisites (the homeserver URL, its domain, the
// registration secret) are neither given nor configured: the reference's 400
// {"detail": "Matrix prerequisites missing: MATRIX_HOMESERVER_URL, ..."}.
type MissingError struct {
	// Missing lists the settings, in table order; Error names them by environment variable.
	Missing []*settings.Setting
}

// Error is the reference's detail.
func (e *MissingError) Error() string {
	env := make([]string, len(e.Missing))
	for i, s := range e.Missing {
		env[i] = s.Env
	}
	return "Matrix prerequisites missing: " + strings.Join(env, ", ")
}

// Plan is what a valid setup request resolves to: the values to use, and which of
// them to store (the four homeserver fields only when not configured yet).
type Plan struct {
	URL             string // "" when none is given or known: the registration has no url
	SenderLocalpart string
	Store           map[string]string
}

// PlanFor validates in against the current settings without side effects. Given values
// must be well-formed (each as its setting's format says), else the error is Invalid;
// the homeserver URL, domain and registration secret must then resolve from the request
// or the settings, else it is a *MissingError. url is optional: without it (and without
// a configured one or publicURL, PUBLIC_URL) the registration has no url.
func PlanFor(in Input, ms *db.MatrixSettings, publicURL string) (*Plan, error) {
	errs := Invalid{}
	fields := []struct {
		s           *settings.Setting
		given, have string
	}{
		{settings.AppserviceURL, in.URL, ms.AppserviceURL},
		{settings.SenderLocalpart, in.SenderLocalpart, ms.SenderLocalpart},
		// The homeserver settings: stored only when not configured yet (by the
		// environment or the database).
		{settings.HomeserverURL, in.HomeserverURL, ms.HomeserverURL},
		{settings.HomeserverPublicURL, in.HomeserverPublicURL, ms.HomeserverPublicURL},
		{settings.HomeserverDomain, in.HomeserverDomain, ms.HomeserverDomain},
		{settings.RegistrationSecret, in.RegistrationSecret, ms.RegistrationSecret},
	}
	valid := map[*settings.Setting]string{}
	for _, f := range fields {
		v := f.s.Clean(f.given)
		if v == "" {
			continue
		}
		if err := f.s.Validate(v); err != nil {
			errs.add(f.s.Key, err.Error())
			continue
		}
		valid[f.s] = v
	}
	if len(errs) > 0 {
		return nil, errs
	}

	plan := &Plan{Store: map[string]string{}}
	plan.URL = firstNonEmpty(valid[settings.AppserviceURL], ms.AppserviceURL, publicURL)
	plan.SenderLocalpart = firstNonEmpty(valid[settings.SenderLocalpart], ms.SenderLocalpart, settings.SenderLocalpart.Default)
	missing := &MissingError{}
	for _, f := range fields[2:] {
		switch {
		case f.have != "":
		case valid[f.s] != "":
			plan.Store[f.s.Key] = valid[f.s]
		case f.s.Required:
			missing.Missing = append(missing.Missing, f.s)
		}
	}
	if len(missing.Missing) > 0 {
		return nil, missing
	}
	return plan, nil
}

// firstNonEmpty returns the first value that is not "".
func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// DefaultURL is the url setup offers: the one configured, else PUBLIC_URL.
func DefaultURL(ms *db.MatrixSettings, publicURL string) string {
	return firstNonEmpty(ms.AppserviceURL, publicURL)
}

// Service runs setup and the bot step.
type Service struct {
	Settings *db.Settings
	// HTTP is the client for the bot's registration on the homeserver (bounded timeouts).
	HTTP *http.Client
	// PublicURL is PUBLIC_URL, the fallback for the appservice url; "" when unknown.
	PublicURL string
}

// Run validates, then in one transaction stores the missing homeserver fields, rotates
// both tokens, sets url and sender_localpart and enables the appservice; then it
// provisions the bot, best effort. A refused request (Invalid, *MissingError) changes
// nothing.
func (s *Service) Run(ctx context.Context, in Input) (*Result, error) {
	ms, err := s.Settings.Matrix(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := PlanFor(in, ms, s.PublicURL)
	if err != nil {
		return nil, err
	}
	asToken, hsToken := auth.RandomHex(32), auth.RandomHex(32)
	values := map[string]string{
		settings.ASToken.Key:            asToken,
		settings.HSToken.Key:            hsToken,
		settings.AppserviceURL.Key:      plan.URL,
		settings.SenderLocalpart.Key:    plan.SenderLocalpart,
		settings.Enabled.Key:            "true",
		settings.BotProvisionStatus.Key: string(db.BotPending),
	}
	for k, v := range plan.Store {
		values[k] = v
	}
	err = s.Settings.Update(ctx, func(tx *sql.Tx) error {
		for k, v := range values {
			if err := s.Settings.SetTx(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ms, err = s.Settings.Matrix(ctx); err != nil {
		return nil, err
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		return nil, err
	}
	yaml, err := reg.YAML()
	if err != nil {
		return nil, err
	}
	status, err := s.ProvisionBot(ctx, ms)
	if err != nil {
		return nil, err
	}
	return &Result{
		RegistrationYAML:   yaml,
		ASToken:            ms.ASToken,
		HSToken:            ms.HSToken,
		SenderLocalpart:    ms.SenderLocalpart,
		WebhookURL:         matrix.WebhookURL(ms.AppserviceURL),
		BotProvisionStatus: status,
	}, nil
}

// ProvisionBot tries the bot step and stores its outcome (bot_provision_status) for the
// status page and the overview.
func (s *Service) ProvisionBot(ctx context.Context, ms *db.MatrixSettings) (db.BotStatus, error) {
	status := matrix.ProvisionBot(ctx, ms, s.HTTP)
	if err := s.Settings.Set(ctx, map[string]string{settings.BotProvisionStatus.Key: string(status)}); err != nil {
		return "", err
	}
	return status, nil
}
