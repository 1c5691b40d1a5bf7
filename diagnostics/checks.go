package diagnostics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
	"matrixas/settings"
)

// checker turns the settings, the local state and the probes' results into checks.
type checker struct {
	ms      *db.MatrixSettings
	loc     *db.DiagnosticStats
	exp     *db.ExportStats
	outbox  *db.OutboxStats
	botBeat time.Time // the sender's last turn; zero when none runs
	p       *probes
	opts    Options
	now     time.Time
}

func pass(name, label, detail string) Check {
	return Check{Name: name, Label: label, OK: true, Detail: detail}
}

func fail(name, label, detail, hint string) Check {
	return Check{Name: name, Label: label, Detail: detail, Hint: hint}
}

// skip is a check that could not run because one it depends on failed.
func skip(name, label, why, hint string) Check {
	return Check{Name: name, Label: label, Detail: "Skipped — " + why, Hint: hint}
}

// all returns every check in report order.
func (c *checker) all() []Check {
	checks := []Check{
		c.homeserverConfigured(),
		c.domainConfigured(),
		c.reachable(),
		c.serverName(),
		c.publicConfigured(),
		c.publicReachable(),
		c.tokenConfigured(CheckASTokenConfigured, "Appservice token (as_token) configured", c.ms.ASToken),
		c.tokenConfigured(CheckHSTokenConfigured, "Homeserver token (hs_token) configured", c.ms.HSToken),
		c.secretConfigured(),
		c.secretEnabled(),
		c.botWhoami(),
		c.userNamespace(),
		c.botAdmin(),
		c.ping(),
		c.liveKit(),
		c.transactions(),
		c.roomStats(),
		c.userStats(),
		c.queue(),
	}
	// history_exports is listed only while exports are in use.
	if ch, ok := c.historyExports(); ok {
		checks = append(checks, ch)
	}
	return append(checks, c.webhookErrors(), c.botRunning(), c.outboxFailures())
}

const setupHint = "Run the appservice setup (POST /api/admin/matrix-appservice/setup/ or the dashboard's setup page)."

// restartHint is the fix whenever the homeserver does not know the current tokens.
const restartHint = "The homeserver does not know this appservice: install the registration YAML (download it from setup) on the homeserver and restart the homeserver. It reads registrations only at start, and every setup rotates the tokens."

// fixedBy names the environment variable that fixes the setting, for details and hints:
// "" when its value comes from the database.
func (c *checker) fixedBy(s *settings.Setting) string {
	if c.ms.Fixed[s.Key] {
		return " (fixed by " + s.Env + ")"
	}
	return ""
}

func (c *checker) hsURL() string { return strings.TrimRight(c.ms.HomeserverURL, "/") }

func (c *checker) homeserverConfigured() Check {
	const name, label = CheckHomeserverConfigured, "Homeserver URL configured"
	switch {
	case c.ms.HomeserverURL == "":
		return fail(name, label, "Not set", "Set the homeserver URL in setup or with "+settings.HomeserverURL.Env+".")
	case settings.HomeserverURL.Validate(c.ms.HomeserverURL) != nil:
		return fail(name, label, fmt.Sprintf("%s — %v", c.ms.HomeserverURL, settings.HomeserverURL.Validate(c.ms.HomeserverURL)),
			"Set an absolute http(s) URL such as https://matrix.example.org"+c.fixedBy(settings.HomeserverURL)+".")
	}
	return pass(name, label, c.ms.HomeserverURL+c.fixedBy(settings.HomeserverURL))
}

func (c *checker) domainConfigured() Check {
	const name, label = CheckHomeserverDomainConfigured, "Homeserver domain configured"
	switch {
	case c.ms.HomeserverDomain == "":
		return fail(name, label, "Not set", "Set the homeserver domain (its server_name, the part after ':' in user IDs) in setup or with "+settings.HomeserverDomain.Env+".")
	case settings.HomeserverDomain.Validate(c.ms.HomeserverDomain) != nil:
		return fail(name, label, c.ms.HomeserverDomain+" — not a host name with an optional :port",
			"Set the homeserver's server_name, for example example.org.")
	}
	return pass(name, label, c.ms.HomeserverDomain+c.fixedBy(settings.HomeserverDomain))
}

// hsUp reports whether the homeserver answered /versions like a Matrix homeserver; when
// it did not, why is the "Skipped — ..." reason for the checks that need it.
func (c *checker) hsUp() (up bool, why, hint string) {
	if c.p.versions == nil {
		return false, "no valid homeserver URL is configured", "Set the homeserver URL first."
	}
	if c.p.versions.err != nil {
		return false, "the homeserver is not reachable", "Fix homeserver_reachable first."
	}
	if _, ok := parseVersions(c.p.versions); !ok {
		return false, "no Matrix homeserver answers at the homeserver URL", "Fix homeserver_reachable first."
	}
	return true, "", ""
}

func (c *checker) reachable() Check {
	const name, label = CheckHomeserverReachable, "Homeserver reachable"
	r := c.p.versions
	if r == nil {
		return skip(name, label, "no valid homeserver URL is configured", "Set the homeserver URL first.")
	}
	base := c.hsURL()
	if r.err != nil {
		d, h := transportFailure(r.err, base, c.opts)
		return fail(name, label, d, h)
	}
	v, ok := parseVersions(r)
	if !ok {
		d, h := notMatrix(r, base, "/_matrix/client/versions")
		return fail(name, label, d, h)
	}
	parts := []string{}
	if s := c.serverSoftware(); s != "" {
		parts = append(parts, s)
	}
	parts = append(parts, "spec up to "+v.GetLatest().String(), fmt.Sprintf("round trip %d ms", r.elapsed.Milliseconds()))
	return pass(name, label, "OK — "+strings.Join(parts, ", "))
}

// serverSoftware is "Synapse 1.99.0" from /_matrix/federation/v1/version, or "" when
// the homeserver does not say (federation turned off, or the path not proxied).
func (c *checker) serverSoftware() string {
	r := c.p.fedVersion
	if r == nil || r.err != nil || r.status != http.StatusOK {
		return ""
	}
	var v struct {
		Server struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"server"`
	}
	if json.Unmarshal(r.body, &v) != nil || v.Server.Name == "" {
		return ""
	}
	return clip(strings.TrimSpace(v.Server.Name+" "+v.Server.Version), 80)
}

// notMatrix describes an HTTP answer that is not what a Matrix homeserver sends.
func notMatrix(r *result, base, path string) (detail, hint string) {
	const urlHint = "Check the homeserver URL: it must be the base of the client-server API (such as https://matrix.example.org, without /_matrix), not a web site, Element or an admin page."
	switch {
	case r.status == http.StatusOK && r.isHTML():
		return fmt.Sprintf("Something answers at %s, but not a Matrix homeserver: %s returned an HTML page", base, path), urlHint
	case r.status == http.StatusOK:
		return fmt.Sprintf("Something answers at %s, but not a Matrix homeserver: %s did not return a list of spec versions", base, path), urlHint
	case r.status == http.StatusNotFound:
		return fmt.Sprintf("Something answers at %s, but %s is 404 Not Found: not a Matrix homeserver, or the URL has a wrong path", base, path), urlHint
	case r.status >= 300 && r.status < 400:
		return fmt.Sprintf("%s redirects (HTTP %d to %s)", base, r.status, clip(r.header.Get("Location"), 200)),
			"Use the URL the redirect points to (often https:// instead of http://)."
	case r.status == http.StatusBadGateway || r.status == http.StatusServiceUnavailable || r.status == http.StatusGatewayTimeout:
		return fmt.Sprintf("%s answers %s to %s", base, r.errorText(), path),
			"A reverse proxy answers, but the homeserver behind it is down or starting: check the homeserver's process and log."
	}
	return fmt.Sprintf("%s answers %s to %s", base, r.errorText(), path), urlHint
}

func (c *checker) serverName() Check {
	const name, label = CheckHomeserverServerName, "Domain is the homeserver's server_name"
	if c.ms.HomeserverDomain == "" {
		return skip(name, label, "no homeserver domain is configured", "Set the homeserver domain first.")
	}
	if up, why, hint := c.hsUp(); !up {
		return skip(name, label, why, hint)
	}
	real, source := c.realServerName()
	if real == "" {
		return skip(name, label, "the homeserver's server_name could not be learned: the as_token is not accepted (see bot_whoami) and the homeserver does not publish /_matrix/key/v2/server",
			"Fix bot_whoami first; then this check compares the domain with the bot's user ID.")
	}
	if !strings.EqualFold(real, c.ms.HomeserverDomain) {
		return fail(name, label,
			fmt.Sprintf("The homeserver's server_name is %s (from %s), but the configured domain is %s", real, source, c.ms.HomeserverDomain),
			fmt.Sprintf("Set the homeserver domain to %s%s, run setup again, install the new registration YAML and restart the homeserver. "+
				"A domain that is not the server_name is the classic cause of \"user not in namespace\" (M_EXCLUSIVE) errors: "+
				"the registration's namespaces and every Matrix ID this server builds use the configured domain.",
				real, c.fixedBy(settings.HomeserverDomain)))
	}
	return pass(name, label, fmt.Sprintf("OK — the homeserver's server_name is %s (from %s)", real, source))
}

// realServerName is the homeserver's server_name: the domain of the user the as_token
// authenticates as, else the server_name of its signing keys.
func (c *checker) realServerName() (serverName, source string) {
	if uid, ok := c.whoamiUser(); ok {
		if hs := uid.Homeserver(); hs != "" {
			return hs, "the bot's user ID " + uid.String()
		}
	}
	if r := c.p.keyServer; r != nil && r.err == nil && r.status == http.StatusOK {
		var k struct {
			ServerName string `json:"server_name"`
		}
		if json.Unmarshal(r.body, &k) == nil && k.ServerName != "" {
			return clip(k.ServerName, 255), "/_matrix/key/v2/server"
		}
	}
	return "", ""
}

// whoamiUser is the user the as_token authenticates as, when whoami succeeded.
func (c *checker) whoamiUser() (id.UserID, bool) {
	r := c.p.whoami
	if r == nil || r.err != nil || r.status != http.StatusOK {
		return "", false
	}
	var w mautrix.RespWhoami
	if json.Unmarshal(r.body, &w) != nil || w.UserID == "" {
		return "", false
	}
	return w.UserID, true
}

func (c *checker) publicConfigured() Check {
	const name, label = CheckPublicConfigured, "Public homeserver URL configured"
	pub := c.ms.HomeserverPublicURL
	switch {
	case pub == "":
		return pass(name, label, "Not set — browsers use the homeserver URL")
	case settings.HomeserverPublicURL.Validate(pub) != nil:
		return fail(name, label, fmt.Sprintf("%s — %v", pub, settings.HomeserverPublicURL.Validate(pub)),
			"Set an absolute http(s) URL, or leave it empty when browsers can use the homeserver URL.")
	}
	return pass(name, label, pub+c.fixedBy(settings.HomeserverPublicURL))
}

func (c *checker) publicReachable() Check {
	const name, label = CheckPublicReachable, "Public homeserver URL reachable"
	pub := publicURL(c.ms)
	r := c.p.public
	if pub == "" || r == nil {
		if c.ms.HomeserverPublicURL != "" && settings.HomeserverPublicURL.Validate(c.ms.HomeserverPublicURL) != nil {
			return skip(name, label, "the public URL is not valid", "Fix public_homeserver_configured first.")
		}
		return pass(name, label, "Same as internal — no separate check")
	}
	const browserNote = " Browsers use this URL; if only they can reach it (split DNS), check it from a browser instead."
	if r.err != nil {
		d, h := transportFailure(r.err, pub, c.opts)
		return fail(name, label, d, h+browserNote)
	}
	v, ok := parseVersions(r)
	if !ok {
		d, h := notMatrix(r, pub, "/_matrix/client/versions")
		return fail(name, label, d, h+browserNote)
	}
	acao := r.header.Get("Access-Control-Allow-Origin")
	base := fmt.Sprintf("answers at %s (spec up to %s, round trip %d ms)", pub, v.GetLatest(), r.elapsed.Milliseconds())
	if acao != "*" && acao != c.opts.Origin {
		got := "no Access-Control-Allow-Origin header"
		if acao != "" {
			got = "Access-Control-Allow-Origin: " + clip(acao, 100)
		}
		return fail(name, label, "It "+base+", but without CORS for browsers ("+got+")",
			"Browser clients such as Element need CORS: make the reverse proxy pass the homeserver's Access-Control-* headers through (or add Access-Control-Allow-Origin: *).")
	}
	return pass(name, label, "OK — "+base+", CORS allows browsers (Access-Control-Allow-Origin: "+clip(acao, 100)+")")
}

func (c *checker) tokenConfigured(name, label, token string) Check {
	if token == "" {
		return fail(name, label, "Not set", setupHint)
	}
	return pass(name, label, Fingerprint(token))
}

func (c *checker) secretConfigured() Check {
	const name, label = CheckSecretConfigured, "User registration secret configured"
	if c.ms.RegistrationSecret == "" {
		return fail(name, label, "Not set",
			"Set the homeserver's shared registration secret in setup or with "+settings.RegistrationSecret.Env+" (or "+settings.RegistrationSecret.FileEnv()+").")
	}
	return pass(name, label, "Set"+c.fixedBy(settings.RegistrationSecret))
}

func (c *checker) secretEnabled() Check {
	const name, label = CheckSecretEnabled, "Shared-secret registration enabled on the homeserver"
	if up, why, hint := c.hsUp(); !up {
		return skip(name, label, why, hint)
	}
	r := c.p.nonce
	if r.err != nil {
		d, h := transportFailure(r.err, c.hsURL(), c.opts)
		return fail(name, label, d, h)
	}
	var n struct {
		Nonce string `json:"nonce"`
	}
	if r.status == http.StatusOK && json.Unmarshal(r.body, &n) == nil && n.Nonce != "" {
		return pass(name, label, "OK — the homeserver hands out registration nonces (nothing was registered; the secret itself is checked when a user is registered)")
	}
	return fail(name, label,
		fmt.Sprintf("Shared-secret registration is off: GET /_synapse/admin/v1/register answered %s", r.errorText()),
		"Set registration_shared_secret (Synapse) or client_api.registration_shared_secret (Dendrite) to the user registration secret, restart the homeserver, and make sure a reverse proxy passes /_synapse/admin/v1/register through.")
}

func (c *checker) botWhoami() Check {
	const name, label = CheckBotWhoami, "Homeserver accepts the as_token"
	if c.ms.ASToken == "" {
		return skip(name, label, "no as_token is configured", setupHint)
	}
	if up, why, hint := c.hsUp(); !up {
		return skip(name, label, why, hint)
	}
	r := c.p.whoami
	if r.err != nil {
		d, h := transportFailure(r.err, c.hsURL(), c.opts)
		return fail(name, label, d, h)
	}
	if r.status != http.StatusOK {
		e := r.mErr()
		if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden ||
			e.ErrCode == mautrix.MUnknownToken.ErrCode || e.ErrCode == mautrix.MForbidden.ErrCode {
			return fail(name, label, "The homeserver refused the as_token ("+r.errorText()+")", restartHint)
		}
		return fail(name, label, "Unexpected answer to whoami: "+r.errorText(), "Check the homeserver's log for this request.")
	}
	uid, ok := c.whoamiUser()
	if !ok {
		return fail(name, label, "The answer to whoami has no user_id", "Check that the URL leads to a Matrix homeserver.")
	}
	want := id.UserID(c.ms.BotUserID())
	switch {
	case want == "":
		return fail(name, label, "Authenticated as "+uid.String()+", but no domain is configured to compare with",
			"Set the homeserver domain to "+uid.Homeserver()+".")
	case uid != want && uid.Homeserver() != want.Homeserver():
		return fail(name, label, fmt.Sprintf("The as_token authenticates as %s, not %s: the homeserver's server_name is %s", uid, want, uid.Homeserver()),
			"Set the homeserver domain to "+uid.Homeserver()+" (see homeserver_server_name).")
	case uid != want:
		return fail(name, label, fmt.Sprintf("The as_token authenticates as %s, not %s: the homeserver has a registration with sender_localpart %s", uid, want, uid.Localpart()),
			"Install the current registration YAML on the homeserver and restart it, or run setup with sender_localpart "+uid.Localpart()+".")
	}
	return pass(name, label, "OK — authenticated as "+uid.String())
}

// asBot returns the skip of a check made with the as_token while what it stands on is
// missing: the as_token, its probe (probed; none without a homeserver domain, which
// means noDomain), the homeserver up, the as_token accepted. ok when all are there.
func (c *checker) asBot(name, label string, probed bool, noDomain string) (Check, bool) {
	switch {
	case c.ms.ASToken == "":
		return skip(name, label, "no as_token is configured", setupHint), false
	case !probed:
		return skip(name, label, "no homeserver domain is configured, so "+noDomain, "Set the homeserver domain first."), false
	}
	if up, why, hint := c.hsUp(); !up {
		return skip(name, label, why, hint), false
	}
	if _, ok := c.whoamiUser(); !ok {
		return skip(name, label, "the as_token is not accepted (see bot_whoami)", "Fix bot_whoami first."), false
	}
	return Check{}, true
}

func (c *checker) userNamespace() Check {
	const name, label = CheckUserNamespace, "Appservice can act as its users"
	if skipped, ok := c.asBot(name, label, c.p.masquerade != nil, "there is no user to act as"); !ok {
		return skipped
	}
	who := c.p.masqueradeAs
	which := "platform user " + who.String()
	if c.loc.ProvisionedUser == "" {
		which = "the bot " + who.String() + " (no platform user is provisioned yet)"
	}
	r := c.p.masquerade
	if r.err != nil {
		d, h := transportFailure(r.err, c.hsURL(), c.opts)
		return fail(name, label, d, h)
	}
	var w mautrix.RespWhoami
	if r.status == http.StatusOK && json.Unmarshal(r.body, &w) == nil {
		if w.UserID == who {
			return pass(name, label, "OK — can act as "+which)
		}
		return fail(name, label, fmt.Sprintf("Asked to act as %s, the homeserver acted as %s", who, w.UserID),
			"The homeserver ignores ?user_id= for this appservice: check that the installed registration is the current one and restart the homeserver.")
	}
	detail := fmt.Sprintf("The homeserver refuses to let the appservice act as %s: %s", who, r.errorText())
	hint := "The user must match the registration's user namespaces and exist on the homeserver: check that the homeserver domain is its server_name and that the installed registration YAML is the current one (then restart the homeserver)."
	switch r.mErr().ErrCode {
	case mautrix.MExclusive.ErrCode:
		detail += " — the user is in another appservice's exclusive namespace or outside this one's"
	case mautrix.MForbidden.ErrCode:
		detail += " — the user is outside the appservice's namespaces or not registered"
	case mautrix.MUnknownToken.ErrCode:
		detail += " — Dendrite answers this when the user is not on its server"
	}
	if real, _ := c.realServerName(); real != "" && !strings.EqualFold(real, c.ms.HomeserverDomain) {
		hint = "The configured domain is not the homeserver's server_name (see homeserver_server_name): fix that first."
	}
	return fail(name, label, detail, hint)
}

func (c *checker) ping() Check {
	const name, label = CheckPing, "Homeserver can reach this appservice (ping)"
	if c.ms.ASToken == "" {
		return skip(name, label, "no as_token is configured", setupHint)
	}
	if up, why, hint := c.hsUp(); !up {
		return skip(name, label, why, hint)
	}
	if w := c.p.whoami; w != nil && w.err == nil && (w.status == http.StatusUnauthorized || w.status == http.StatusForbidden) {
		return skip(name, label, "the as_token is not accepted (see bot_whoami)", "Fix bot_whoami first.")
	}
	r := c.p.ping
	target := "this server"
	if c.ms.AppserviceURL != "" {
		target = c.ms.AppserviceURL
	}
	if r.err != nil {
		d, h := transportFailure(r.err, c.hsURL(), c.opts)
		if r.err == errAnswerTimeout {
			return fail(name, label, fmt.Sprintf("No answer to the ping within %s: the homeserver may be waiting for %s", human(c.opts.RequestTimeout), target),
				"Check that the homeserver can reach "+target+" (the url in the registration), and this server's log for POST /_matrix/app/v1/ping.")
		}
		return fail(name, label, d, h)
	}
	if r.status == http.StatusOK {
		var pr mautrix.RespAppservicePing
		if json.Unmarshal(r.body, &pr) != nil {
			return fail(name, label, "The homeserver answered the ping with HTTP 200 but no duration_ms", "Check the homeserver's log for this request.")
		}
		return pass(name, label, fmt.Sprintf("OK — round trip %d ms", pr.DurationMS))
	}
	e := r.mErr()
	switch {
	case e.ErrCode == mautrix.MUnrecognized.ErrCode || (r.status == http.StatusNotFound && e.ErrCode == "") || r.status == http.StatusMethodNotAllowed:
		detail := "Not supported by this homeserver"
		if v, ok := parseVersions(c.p.versions); ok && v.GetLatest().LessThan(mautrix.SpecV17) {
			detail += " (spec up to " + v.GetLatest().String() + "; ping needs v1.7)"
		}
		return pass(name, label, detail+" — evidence from transactions_received instead: "+c.transactionEvidence())
	case e.ErrCode == mautrix.MURLNotSet.ErrCode:
		return fail(name, label, "The installed registration has no url, so the homeserver cannot send events to this server",
			"Run setup with url set to this server's address as the homeserver reaches it, install the new registration YAML and restart the homeserver.")
	case e.ErrCode == mautrix.MBadStatus.ErrCode:
		detail := fmt.Sprintf("The homeserver reached %s, but it answered HTTP %d", target, e.Status)
		hint := "Check the url in the registration and this server's log for POST /_matrix/app/v1/ping."
		switch e.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = "This server refused the homeserver's hs_token: the homeserver has an old registration. " + restartHint
		case http.StatusNotFound:
			hint = "The registered url does not lead to this server's /_matrix/app/v1 (a wrong url, or a proxy that changes the path)."
		}
		return fail(name, label, detail, hint)
	case e.ErrCode == mautrix.MConnectionFailed.ErrCode:
		return fail(name, label, fmt.Sprintf("The homeserver could not connect to %s", target),
			"The url in the registration must be reachable from the homeserver (inside Docker, not localhost): check it and any firewall, then run setup again if it is wrong.")
	case e.ErrCode == mautrix.MConnectionTimeout.ErrCode:
		return fail(name, label, fmt.Sprintf("The homeserver's request to %s timed out", target),
			"Check that this server is up and reachable from the homeserver at the registered url, and not overloaded.")
	case e.ErrCode == mautrix.MForbidden.ErrCode || e.ErrCode == mautrix.MUnknownToken.ErrCode:
		return fail(name, label, "The homeserver refused the ping ("+r.errorText()+")", restartHint)
	}
	return fail(name, label, "Unexpected answer to the ping: "+r.errorText(), "Check the homeserver's log for this request.")
}

// transactionEvidence says when the homeserver last pushed events, for the ping check of
// homeservers without ping.
func (c *checker) transactionEvidence() string {
	if c.loc.LastTransactionAt.IsZero() {
		return "no transaction received yet"
	}
	return "last transaction received " + ago(c.now.Sub(c.loc.LastTransactionAt))
}

func (c *checker) transactions() Check {
	const name, label = CheckTransactions, "Transactions received from the homeserver"
	active := c.loc.Rooms[db.RoomActive]
	staleHint := fmt.Sprintf("The homeserver pushes events to %s. Check appservice_ping, that the url in the installed registration leads to this server, "+
		"and the homeserver's log for appservice delivery errors (it backs off after failures). Quiet rooms send nothing either; "+
		"the limit is TRANSACTIONS_STALE_AFTER (%s).", matrix.WebhookURL(orDefault(c.ms.AppserviceURL, "<url>")), human(c.opts.StaleAfter))
	if c.loc.LastTransactionAt.IsZero() {
		if active == 0 {
			return pass(name, label, "None received yet — none expected before rooms exist")
		}
		return fail(name, label, fmt.Sprintf("None ever received, with %s", plural(active, "active room")), staleHint)
	}
	age := c.now.Sub(c.loc.LastTransactionAt)
	detail := fmt.Sprintf("Last received %s (%s); %d in the last hour, %d in total",
		ago(age), c.loc.LastTransactionAt.UTC().Format(time.RFC3339), c.loc.TransactionsSince, c.loc.TransactionsTotal)
	if active > 0 && age > c.opts.StaleAfter {
		return fail(name, label, detail+fmt.Sprintf(" — nothing for longer than %s with %s", human(c.opts.StaleAfter), plural(active, "active room")), staleHint)
	}
	return pass(name, label, detail)
}

func (c *checker) roomStats() Check {
	const name, label = CheckRoomStats, "Rooms"
	r := c.loc.Rooms
	total := 0
	for _, n := range r {
		total += n
	}
	detail := fmt.Sprintf("%d active, %d creating, %d errored, %d total", r[db.RoomActive], r[db.RoomCreating], r[db.RoomError], total)
	if r[db.RoomError] > 0 {
		return fail(name, label, detail, "Open the rooms page: each errored room shows its error. Fix the cause (often homeserver_server_name or bot_whoami), then retry the rooms.")
	}
	return pass(name, label, detail)
}

func (c *checker) userStats() Check {
	const name, label = CheckUserStats, "Users"
	return pass(name, label, fmt.Sprintf("%d provisioned out of %d total", c.loc.ProfilesProvisioned, c.loc.ProfilesTotal))
}

func (c *checker) queue() Check {
	const name, label = CheckProvisioningQueue, "Provisioning queue"
	q := c.loc
	syncs := ""
	if q.MemberSyncs > 0 {
		syncs = fmt.Sprintf("; %s waiting for a member sync", plural(q.MemberSyncs, "room"))
	}
	if q.Pending() == 0 {
		return pass(name, label, "Empty — nothing waiting"+syncs)
	}
	age := c.now.Sub(q.OldestPending)
	detail := fmt.Sprintf("%d pending (%s, %s), the oldest queued %s", q.Pending(), plural(q.PendingRooms, "room"), plural(q.PendingUsers, "user"), ago(age))
	if q.Retrying > 0 {
		detail += fmt.Sprintf(", %d retrying after an error", q.Retrying)
	}
	detail += syncs
	if age > c.opts.QueueStuckAfter {
		return fail(name, label, detail+fmt.Sprintf(" — stuck for more than %s", human(c.opts.QueueStuckAfter)),
			"The provisioning worker is not making progress: check that the appservice is enabled, the checks above are green, and the log for provisioning errors.")
	}
	return pass(name, label, detail)
}

// historyExports is history_exports: no export failed in the last 24 hours. It is
// listed only when exports are enabled or some exist (manual ones need no setting).
func (c *checker) historyExports() (Check, bool) {
	const name, label = CheckHistoryExports, "History exports"
	e := c.exp
	if !c.opts.ExportsEnabled && e.Total == 0 {
		return Check{}, false
	}
	detail := fmt.Sprintf("%d completed, %d failed in the last 24 h; %d waiting, %d running", e.Completed, e.Failed, e.Pending, e.Running)
	if !e.LastDone.IsZero() {
		detail += "; the last completed " + ago(c.now.Sub(e.LastDone))
	}
	if !c.opts.ExportsEnabled {
		detail += " (daily exports are off: MATRIX_HISTORY_EXPORT_ENABLED)"
	}
	if e.Failed > 0 {
		return fail(name, label, detail+". Last error: "+e.LastError,
			"Open the Exports page (filter: failed): each failed export says why. Fix the cause (often the bot is not in the room, or the homeserver is unreachable: see the checks above), then export the room again."), true
	}
	return pass(name, label, detail), true
}

func (c *checker) botRunning() Check {
	const name, label = CheckBotRunning, "Bot sender"
	q := c.outbox
	queue := "nothing pending"
	if q.Pending > 0 {
		queue = fmt.Sprintf("%d pending, the oldest queued %s", q.Pending, ago(c.now.Sub(q.OldestPending)))
		if q.Retrying > 0 {
			queue += fmt.Sprintf(", %d waiting to be retried", q.Retrying)
		}
	}
	if c.botBeat.IsZero() {
		return fail(name, label, "Not running — "+queue, "The bot's sender starts with the server: check the log for a start-up error, and restart the server.")
	}
	if age := c.now.Sub(c.botBeat); age > c.opts.BotStaleAfter {
		return fail(name, label, fmt.Sprintf("Stalled — its loop last turned %s; %s", ago(age), queue),
			"The sender has not looked at the outbox for too long: check the log for bot errors (a database that refuses writes pauses it), and restart the server if it persists.")
	}
	if q.Pending > 0 && c.now.Sub(q.OldestPending) > c.opts.QueueStuckAfter {
		return fail(name, label, fmt.Sprintf("Running, but %s — stuck for more than %s", queue, human(c.opts.QueueStuckAfter)),
			"Messages wait while the appservice is not set up or disabled, and between retries (up to 30 min): check bot_whoami above, and the Outbox page for each message's last error.")
	}
	return pass(name, label, "Running — "+queue)
}

func (c *checker) outboxFailures() Check {
	const name, label = CheckOutboxFailures, "Bot messages failed in the last 24 h"
	n := c.outbox.FailedSince
	if n == 0 {
		return pass(name, label, "None")
	}
	return fail(name, label, fmt.Sprintf("%s failed in the last 24 h (%d failed kept in all)", plural(n, "message"), c.outbox.Failed),
		"Open the Outbox page and filter by failed: each message shows why (often the bot is not in the room, or the homeserver was unreachable for the whole retry schedule). Fix the cause, then retry them there.")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ago is a short, human duration in the past: "just now", "45 s ago", "12 min ago".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now (clock skew)"
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// human is a duration as people write it: "24h", "30 min", "2s", "1.5s".
func human(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

// plural is "1 room", "2 rooms".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
