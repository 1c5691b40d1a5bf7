package matrix

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"maunium.net/go/mautrix"

	"matrixas/db"
	"matrixas/settings"
)

// BotName is the bot's display name: "<SITE_NAME> Bot" ("Waldur Bot" by default).
func BotName(ms *db.MatrixSettings) string {
	site := strings.TrimSpace(ms.Value(settings.SiteName))
	if site == "" {
		site = settings.SiteName.Default
	}
	return site + " Bot"
}

// ProvisionBot registers the bot through m.login.application_service and gives it its
// display name (BotName). It returns the seed's bot_provision_status: db.BotOK when the
// bot was registered, already exists (M_USER_IN_USE) or is reserved to this appservice
// (M_EXCLUSIVE: the homeserver made it from sender_localpart); db.BotSkipped only when no
// homeserver is configured to try; else db.BotFailed(errcode or reason), also when the
// homeserver cannot be reached ("failed: ... connection refused"). The reason never
// carries a token. The display name is best effort: it is set only when it differs (each
// change is a member event in every room of the bot), and its failure is not the
// registration's.
func ProvisionBot(ctx context.Context, ms *db.MatrixSettings, hc *http.Client) db.BotStatus {
	cli, err := Client(ms, hc, "")
	if err != nil {
		return db.BotSkipped
	}
	// The answer is decoded, so a 200 that is not a Matrix answer is not taken for success.
	var resp mautrix.RespRegister
	_, err = cli.MakeRequest(ctx, http.MethodPost, cli.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
		Username:     ms.SenderLocalpart,
		Type:         mautrix.AuthTypeAppservice,
		InhibitLogin: true,
	}, &resp)
	if err != nil && !errors.Is(err, mautrix.MUserInUse) && !errors.Is(err, mautrix.MExclusive) {
		return db.BotFailed(Reason(err))
	}
	name := BotName(ms)
	if cur, err := cli.GetOwnDisplayName(ctx); err != nil || cur.DisplayName != name {
		cli.SetDisplayName(ctx, name) //nolint:errcheck // best effort: the bot works without it
	}
	return db.BotOK
}

// Unreachable reports whether err means the homeserver could not be reached at all
// (refused, unknown host, timeout), as opposed to an answer we did not like.
func Unreachable(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var urlErr *url.Error
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		return true
	}
	return errors.As(err, &urlErr) && urlErr.Timeout()
}

// Reason is a short, secret-free description of a homeserver call's error: the Matrix
// errcode when there is one, else the HTTP status, else the cause.
func Reason(err error) string {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) {
		if httpErr.RespError != nil && httpErr.RespError.ErrCode != "" {
			return httpErr.RespError.ErrCode
		}
		if httpErr.Response != nil {
			if httpErr.Response.StatusCode < 300 {
				return "unreadable answer (HTTP " + httpErr.Response.Status + ")"
			}
			return "HTTP " + httpErr.Response.Status
		}
		if httpErr.WrappedError != nil {
			err = httpErr.WrappedError
		}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // the URL may carry ?user_id=; the cause alone is enough
	}
	return err.Error()
}
