package web

import (
	"context"
	"log/slog"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/matrix"
	"matrixas/metrics"
	"matrixas/waldur"
)

// botDeps are the bot's optional inputs: the platform it reads live (nil: none
// connected, and !status and !orders say so) and who owns the customers (nil: no
// customers known, so nobody is answered as an owner). The platform sync provides both.
type botDeps struct {
	Platform *waldur.Client
	Owners   bot.CustomerOwners
	// OnSent is called after each outbox message reached its final state (sent or
	// failed): the provisioning worker waits for a disabled room's notice. nil = nobody.
	OnSent func()
}

// newBotSender wires the bot: its answers, composed from the store and the platform,
// and the Sender that posts the outbox as the bot through matrix.RoomIO, its homeserver
// calls timed as metrics.CallerBot.
func newBotSender(store *db.Store, st *db.Settings, m *metrics.Metrics, log *slog.Logger, deps botDeps) *bot.Sender {
	botUserID := func(ctx context.Context) id.UserID {
		ms, err := st.Matrix(ctx)
		if err != nil {
			return ""
		}
		return ms.BotUserID()
	}
	answers := bot.New(bot.Config{
		Directory: store,
		Owners:    deps.Owners,
		Platform:  bot.WaldurPlatform(deps.Platform),
		Self: func(ctx context.Context) (id.UserID, string) {
			ms, err := st.Matrix(ctx)
			if err != nil {
				return "", ""
			}
			return ms.BotUserID(), matrix.BotName(ms) // "SITE_NAME Bot"
		},
		Log: log,
	})
	io := matrix.NewBotRoomIO(st.Matrix, m.InstrumentClient(matrix.HTTPClient(3*time.Second, 20*time.Second), metrics.CallerBot))
	return bot.NewSender(store, io, answers, bot.SenderOptions{
		Ready:     func(ctx context.Context) bool { return botReady(ctx, st) },
		BotUserID: botUserID,
		OnSent:    deps.OnSent,
		Observer:  m,
		Log:       log,
	})
}

// botReady reports whether the bot can post at all: the appservice is enabled and set
// up (homeserver, domain, as_token). Until then messages wait, spending no attempt.
func botReady(ctx context.Context, st *db.Settings) bool {
	ms, err := st.Matrix(ctx)
	return err == nil && ms.Enabled && ms.HomeserverURL != "" && ms.HomeserverDomain != "" && ms.ASToken != ""
}
