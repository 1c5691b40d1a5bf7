// Package setup is the appservice setup that the JSON API and the dashboard's Setup page
// share: it validates a request against the current settings, stores the homeserver
// fields not configured yet, rotates both tokens, enables the appservice, builds the
// registration file, and provisions the bot, best effort (MATRIX.md section 4).
package setup

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
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

// Invalid is a request setup refuses: messages by request field, in the API's
// {"field": ["message"]} shape.
type Invalid map[string][]string

func (v Invalid) add(field, msg string) { v[field] = append(v[field], msg) }

// Plan is what a valid setup request resolves to: the values to use, and which of
// them to store (the four homeserver fields only when not configured yet).
type Plan struct {
	URL             string
	SenderLocalpart string
	Store           map[string]string
}

// PlanFor validates in against the current settings without side effects. Given
// values must be well-formed (each as its setting's format says); the homeserver URL,
// domain and registration secret must resolve from the request or the settings.
// publicURL (PUBLIC_URL) is the fallback for url.
func PlanFor(in Input, ms *db.MatrixSettings, publicURL string) (*Plan, Invalid) {
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

	plan := &Plan{Store: map[string]string{}}
	plan.URL = firstNonEmpty(valid[settings.AppserviceURL], ms.AppserviceURL, publicURL)
	if plan.URL == "" && errs[settings.AppserviceURL.Key] == nil {
		errs.add(settings.AppserviceURL.Key, "This field is required: the URL at which the homeserver reaches this server.")
	}
	plan.SenderLocalpart = firstNonEmpty(valid[settings.SenderLocalpart], ms.SenderLocalpart, settings.SenderLocalpart.Default)
	for _, f := range fields[2:] {
		switch {
		case f.have != "":
		case valid[f.s] != "":
			plan.Store[f.s.Key] = valid[f.s]
		case errs[f.s.Key] != nil: // given, but not valid
		case f.s.Required:
			errs.add(f.s.Key, fmt.Sprintf("%s is not configured: give %s (or set %s).", f.s.Label, f.s.Key, f.s.Env))
		}
	}
	if len(errs) > 0 {
		return nil, errs
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
// provisions the bot, best effort. A refused request changes nothing (Invalid, nil).
func (s *Service) Run(ctx context.Context, in Input) (*Result, Invalid, error) {
	ms, err := s.Settings.Matrix(ctx)
	if err != nil {
		return nil, nil, err
	}
	plan, errs := PlanFor(in, ms, s.PublicURL)
	if errs != nil {
		return nil, errs, nil
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
		return nil, nil, err
	}
	if ms, err = s.Settings.Matrix(ctx); err != nil {
		return nil, nil, err
	}
	reg, err := matrix.BuildRegistration(ms)
	if err != nil {
		return nil, nil, err
	}
	yaml, err := reg.YAML()
	if err != nil {
		return nil, nil, err
	}
	status, err := s.ProvisionBot(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	return &Result{
		RegistrationYAML:   yaml,
		ASToken:            ms.ASToken,
		HSToken:            ms.HSToken,
		SenderLocalpart:    ms.SenderLocalpart,
		WebhookURL:         matrix.WebhookURL(ms.AppserviceURL),
		BotProvisionStatus: status,
	}, nil, nil
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
