package diagnostics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix"

	"matrixas/settings"
)

// The checks of issue 17: what the homeserver lets the bot do to accounts, calls
// (LiveKit), and the homeserver's view of this server (5xx answers).

// botAdmin is bot_homeserver_admin: whether the homeserver offers the bot an admin API
// (Synapse's, with the bot a server admin). Without one everything works but two things:
// a deactivated user's account is not locked (their devices are still signed out and
// they leave every room), and a link cannot tell a homeserver admin account. So it fails
// only when the homeserver's answer is not one of those.
func (c *checker) botAdmin() Check {
	const name, label = CheckBotAdmin, "Homeserver admin API for the bot"
	if skipped, ok := c.asBot(name, label, c.p.admin != nil, "the bot has no user ID"); !ok {
		return skipped
	}
	r := c.p.admin
	if r.err != nil {
		d, h := transportFailure(r.err, c.hsURL(), c.opts)
		return fail(name, label, d, h)
	}
	const without = "deactivated users are signed out and removed from their rooms, but their accounts are not locked, and linking an account cannot tell a homeserver admin account"
	var a struct {
		Admin bool `json:"admin"`
	}
	e := r.mErr()
	switch {
	case r.status == http.StatusOK && json.Unmarshal(r.body, &a) == nil && a.Admin:
		return pass(name, label, "OK — the bot "+c.ms.BotUserID().String()+" is a server admin (Synapse admin API): "+
			"deactivated users' accounts are locked, and homeserver admin accounts are never linked")
	case r.status == http.StatusOK, r.status == http.StatusForbidden:
		return pass(name, label, fmt.Sprintf("Not available — the bot is not a server admin on this homeserver (%s): %s. "+
			"To have them on Synapse, make the bot a server admin (UPDATE users SET admin = 1 WHERE name = '%s';)", r.errorText(), without, c.ms.BotUserID()))
	case r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed || e.ErrCode == mautrix.MUnrecognized.ErrCode:
		detail := "Not available — this homeserver has no admin API the bot may use"
		if s := c.serverSoftware(); strings.HasPrefix(s, "Dendrite") {
			detail = "Not available — " + s + " has no admin API an appservice may use"
		}
		return pass(name, label, detail+": "+without)
	}
	return fail(name, label, "Unexpected answer from the admin API: "+r.errorText(), "Check the homeserver's log for this request.")
}

// liveKitFocusKey is where a homeserver's client well-known lists its call back ends
// (MSC4143); Element Call uses the "livekit" ones.
const liveKitFocusKey = "org.matrix.msc4143.rtc_foci"

// liveKit is livekit_configured: whether the homeserver's /.well-known/matrix/client
// (at the public homeserver URL) lists a LiveKit focus. It counts toward ok only when
// MATRIX_LIVEKIT_URL says one is expected; then the listed service must be that one.
func (c *checker) liveKit() Check {
	const name, label = CheckLiveKit, "LiveKit (calls) listed by the homeserver"
	want := strings.TrimRight(c.ms.Value(settings.LiveKitURL), "/")
	notExpected := " — none expected (" + settings.LiveKitURL.Env + " is not set)"
	wkURL := strings.TrimRight(c.ms.PublicURL(), "/") + "/.well-known/matrix/client"
	hint := fmt.Sprintf(`List it in the homeserver's client well-known (%s): "%s": [{"type": "livekit", "livekit_service_url": "%s"}], served with CORS for browsers.`,
		wkURL, liveKitFocusKey, orDefault(want, "https://livekit-jwt.example.org"))
	r := c.p.wellKnown
	if r == nil {
		if want == "" {
			return pass(name, label, "Not checked: no homeserver URL is configured"+notExpected)
		}
		return skip(name, label, "no homeserver URL is configured", "Set the homeserver URL first.")
	}
	var found string
	problem := ""
	switch {
	case r.err != nil:
		problem, _ = transportFailure(r.err, wkURL, c.opts)
	case r.status != http.StatusOK:
		problem = wkURL + " answers " + r.errorText()
	default:
		var wk map[string]json.RawMessage
		var foci []struct {
			Type       string `json:"type"`
			ServiceURL string `json:"livekit_service_url"`
		}
		switch {
		case json.Unmarshal(r.body, &wk) != nil:
			problem = wkURL + " is not a JSON object"
		case wk[liveKitFocusKey] == nil:
			problem = wkURL + " lists no " + liveKitFocusKey
		case json.Unmarshal(wk[liveKitFocusKey], &foci) != nil:
			problem = wkURL + "'s " + liveKitFocusKey + " is not a list of foci"
		}
		for _, f := range foci {
			if f.Type == "livekit" && f.ServiceURL != "" {
				found = clip(strings.TrimRight(f.ServiceURL, "/"), 200)
				break
			}
		}
		if problem == "" && found == "" {
			problem = wkURL + " lists no LiveKit focus (type livekit) under " + liveKitFocusKey
		}
	}
	switch {
	case found != "" && want != "" && !strings.EqualFold(found, want):
		return fail(name, label, fmt.Sprintf("The homeserver lists the LiveKit service %s, but %s expects %s", found, settings.LiveKitURL.Env, want),
			"Correct the homeserver's well-known, or "+settings.LiveKitURL.Env+" if the listed one is right.")
	case found != "":
		return pass(name, label, "OK — LiveKit service "+found+" (from "+wkURL+")")
	case want == "":
		return pass(name, label, "None listed: "+problem+notExpected)
	}
	return fail(name, label, fmt.Sprintf("%s expects the LiveKit service %s, but %s", settings.LiveKitURL.Env, want, problem), hint)
}

// webhookErrors is webhook_errors: the 5xx answers this server gave the homeserver in
// the last hour. The homeserver retries those transactions later (with backoff), so
// nothing is lost, but events arrive late and something here needs fixing.
func (c *checker) webhookErrors() Check {
	const name, label = CheckWebhookErrors, "Errors answered to the homeserver (last hour)"
	if c.opts.WebhookErrors == nil {
		return pass(name, label, "None counted")
	}
	n, since := c.opts.WebhookErrors.Count(c.now)
	window := "in the last hour"
	if c.now.Sub(since) < 59*time.Minute {
		window = "since this server started " + ago(c.now.Sub(since))
	}
	if n == 0 {
		return pass(name, label, "None "+window)
	}
	return fail(name, label, fmt.Sprintf("%s (5xx) %s", plural(n, "error answer"), window),
		"The homeserver delivers those transactions again later, with backoff. Look in this server's log for the failed requests "+
			"(PUT /_matrix/app/v1/transactions/...); a database that refuses writes (a full disk, a read-only file) shows on /readyz and the overview.")
}
