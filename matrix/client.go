// Package matrix is this server's side of the Matrix appservice API: the registration
// file, the client calls to the homeserver (as the bot or as a managed user), the bot's
// provisioning, and the redaction of secrets from what the homeserver says.
package matrix

import (
	"context"
	"net"
	"net/http"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// HTTPClient returns an HTTP client for homeserver calls with bounded connect and request
// time, so no call can hang a worker or a page.
func HTTPClient(connect, request time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: request,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   connect,
			ResponseHeaderTimeout: request,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// Client returns a mautrix client that authenticates with the as_token and acts as
// userID (masquerading with ?user_id=); an empty userID acts as the bot.
func Client(ms *db.MatrixSettings, httpClient *http.Client, userID id.UserID) (*mautrix.Client, error) {
	if ms.HomeserverURL == "" || ms.ASToken == "" || ms.HomeserverDomain == "" {
		return nil, ErrNotSetUp
	}
	bot := id.UserID(ms.BotUserID())
	if userID == "" {
		userID = bot
	}
	c, err := mautrix.NewClient(ms.HomeserverURL, userID, ms.ASToken)
	if err != nil {
		return nil, err
	}
	c.Client = httpClient
	c.SetAppServiceUserID = userID != bot
	c.DefaultHTTPRetries = 0 // our callers own retries and backoff
	return c, nil
}

// JoinAs joins the managed user userID to roomID as themselves, through the appservice:
// it accepts their pending invite (a room that is invite only refuses a user without one).
func JoinAs(ctx context.Context, ms *db.MatrixSettings, httpClient *http.Client, userID id.UserID, roomID id.RoomID) error {
	c, err := Client(ms, httpClient, userID)
	if err != nil {
		return err
	}
	_, err = c.JoinRoomByID(ctx, roomID)
	return err
}
