package matrix

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"

	"maunium.net/go/mautrix"

	"matrixas/db"
)

// BotDisplayName is the display name given to the appservice's bot user.
const BotDisplayName = "Waldur bot"

// ProvisionBot registers the bot through m.login.application_service (M_USER_IN_USE
// counts as done) and sets its display name. It returns the seed's bot_provision_status:
// db.BotOK, db.BotSkipped when no homeserver could be reached to try, or
// db.BotFailed(errcode or reason). The reason never carries a token.
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
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		return outcome(err)
	}
	if err := cli.SetDisplayName(ctx, BotDisplayName); err != nil {
		return outcome(err)
	}
	return db.BotOK
}

// outcome turns a homeserver call's error into skipped (unreachable) or failed.
func outcome(err error) db.BotStatus {
	if Unreachable(err) {
		return db.BotSkipped
	}
	return db.BotFailed(Reason(err))
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
