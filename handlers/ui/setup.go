package ui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/matrix"
	"matrixas/settings"
	"matrixas/setup"
	"matrixas/views"
)

// setupOwn are the settings setup always writes; setupHomeserver those it stores only
// when they are not configured yet.
var (
	setupOwn        = []*settings.Setting{settings.AppserviceURL, settings.SenderLocalpart}
	setupHomeserver = []*settings.Setting{settings.HomeserverURL, settings.HomeserverPublicURL, settings.HomeserverDomain, settings.RegistrationSecret}
)

// setupData builds the setup page from the settings: current values as defaults, and
// the homeserver fields setup would not change shown locked, with the reason, so nobody
// types a value that setup then silently ignores.
func (h *Handler) setupData(w http.ResponseWriter, r *http.Request, ms *db.MatrixSettings) views.SetupData {
	d := views.SetupData{Page: h.page(w, r, "Setup", "setup"), Enabled: ms.Enabled}
	for _, s := range setupOwn {
		d.Fields = append(d.Fields, settingField("setup-", s, ms))
	}
	d.Fields[0].Value = setup.DefaultURL(ms, h.PublicURL)
	for _, s := range setupHomeserver {
		f := settingField("setup-", s, ms)
		if f.Locked == "" && ms.Value(s) != "" {
			f.Locked = "Already configured, so setup keeps it; change it on the Settings page."
		}
		d.Homeserver = append(d.Homeserver, f)
	}
	if ms.Enabled && ms.ASToken != "" {
		rv := registrationView(ms)
		d.Current = &rv
	}
	return d
}

func registrationView(ms *db.MatrixSettings) views.RegistrationView {
	return views.RegistrationView{
		WebhookURL: matrix.WebhookURL(ms.AppserviceURL),
		BotUserID:  ms.BotUserID().String(),
		BotStatus:  string(ms.BotProvisionStatus),
		Loopback:   isLoopbackURL(ms.AppserviceURL),
	}
}

// isLoopbackURL reports whether u names localhost or a loopback address.
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := p.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SetupPage is GET /setup.
func (h *Handler) SetupPage(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Settings.Matrix(r.Context())
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.SetupPage(h.setupData(w, r, ms)))
}

// SetupSubmit is POST /setup: the same setup as the API (setup.Service.Run). Errors
// re-render the form with inline messages. Success answers 200 with the registration
// YAML instead of redirecting: it holds both tokens and is shown this once (the download
// link builds it again on demand), so it must not pass through the session store.
func (h *Handler) SetupSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r) {
		return
	}
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	fields := map[string]string{}
	for k := range r.PostForm {
		fields[k] = r.PostFormValue(k)
	}
	in := setup.InputFrom(fields)

	var res *setup.Result
	if ms.Enabled && r.PostFormValue("confirm_rotate") != "yes" {
		// Validate the rest too, so every problem shows at once; nothing is written.
		_, err = setup.PlanFor(in, ms, h.PublicURL)
		err = errors.Join(err, errNotConfirmed)
	} else {
		res, err = h.AppserviceSetup.Run(ctx, in)
	}
	errs := setupErrors(err)
	if err != nil && errs == nil {
		respond.ServerError(w, r, err)
		return
	}
	if errs != nil {
		d := h.setupData(w, r, ms)
		typed := map[string]string{
			settings.AppserviceURL.Key: in.URL, settings.SenderLocalpart.Key: in.SenderLocalpart,
			settings.HomeserverURL.Key: in.HomeserverURL, settings.HomeserverPublicURL.Key: in.HomeserverPublicURL,
			settings.HomeserverDomain.Key: in.HomeserverDomain,
		}
		first := map[string]string{}
		for field, msgs := range errs {
			first[field] = msgs[0]
		}
		showSubmitted(d.Fields, typed, first)
		showSubmitted(d.Homeserver, typed, first)
		d.ConfirmError = first["confirm_rotate"]
		d.FormError = "Setup did not run: fix the fields marked below. Nothing was changed."
		var missing *setup.MissingError
		if errors.As(err, &missing) {
			d.FormError = "Setup did not run: " + missing.Error() + ". Fill them in below. Nothing was changed."
		}
		respond.Render(w, r, views.SetupPage(d))
		return
	}

	ms, err = h.Settings.Matrix(ctx)
	if err != nil {
		respond.ServerError(w, r, err)
		return
	}
	d := h.setupData(w, r, ms)
	d.Current = nil
	rv := registrationView(ms)
	rv.BotStatus = string(res.BotProvisionStatus)
	d.Result = &views.SetupResultView{RegistrationYAML: res.RegistrationYAML, RegistrationView: rv}
	d.Flashes = append(d.Flashes, views.Flash{Kind: views.FlashSuccess,
		Message: "Setup complete: new tokens generated and the appservice enabled. Install the registration below on the homeserver and restart it."})
	w.Header().Set("Cache-Control", "no-store")
	respond.Render(w, r, views.SetupPage(d))
}

// errNotConfirmed refuses a setup that would rotate working tokens without the box ticked.
var errNotConfirmed = errors.New("rotation not confirmed")

// setupErrors turns setup's refusals (Invalid, *setup.MissingError, errNotConfirmed, in
// any combination) into messages by form field; nil when err is none of them.
func setupErrors(err error) setup.Invalid {
	if err == nil {
		return nil
	}
	out := setup.Invalid{}
	var invalid setup.Invalid
	if errors.As(err, &invalid) {
		for k, v := range invalid {
			out[k] = append(out[k], v...)
		}
	}
	var missing *setup.MissingError
	if errors.As(err, &missing) {
		for _, s := range missing.Missing {
			out[s.Key] = append(out[s.Key], fmt.Sprintf("%s is not configured: give it here (or set %s).", s.Label, s.Env))
		}
	}
	if errors.Is(err, errNotConfirmed) {
		out["confirm_rotate"] = append(out["confirm_rotate"], "Tick this box to confirm: the homeserver will need the new registration.")
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// botOutcome turns bot_provision_status into a flash.
func botOutcome(status db.BotStatus) views.Flash {
	switch {
	case status == db.BotOK:
		return views.Flash{Kind: views.FlashSuccess, Message: "The bot is provisioned: the homeserver accepted this appservice's token."}
	case status == db.BotSkipped:
		return views.Flash{Kind: views.FlashError, Message: "No homeserver is configured, so the bot was not provisioned."}
	default:
		return views.Flash{Kind: views.FlashError, Message: "Bot provisioning " + string(status) +
			". Is the homeserver running at the configured URL, and has it loaded the new registration (installed and restarted)?"}
	}
}

// SetupProvisionBot is POST /setup/provision-bot: retry only the bot step. htmx gets the
// bot panel and a flash; a plain form gets redirected back to /setup with the flash.
func (h *Handler) SetupProvisionBot(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ms, err := h.Settings.Matrix(ctx)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	if !ms.Enabled || ms.ASToken == "" {
		if isHTMX(r) {
			h.uiFail(w, r, http.StatusBadRequest, "The appservice is not set up yet: run setup first.")
			return
		}
		h.redirectFlash(w, r, "/setup", views.FlashError, "The appservice is not set up yet: run setup first.")
		return
	}
	status, err := h.AppserviceSetup.ProvisionBot(ctx, ms)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	f := botOutcome(status)
	if !isHTMX(r) {
		h.redirectFlash(w, r, "/setup", f.Kind, f.Message)
		return
	}
	rv := registrationView(ms)
	rv.BotStatus = string(status)
	h.renderFragments(w, r, views.BotPanel(rv), views.FlashesOOB([]views.Flash{f}))
}

// renderFragments answers an htmx request with several components (a target and its
// out-of-band companions).
func (h *Handler) renderFragments(w http.ResponseWriter, r *http.Request, cs ...templ.Component) {
	respond.Render(w, r, templ.Join(cs...))
}
