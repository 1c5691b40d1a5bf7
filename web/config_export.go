package web

import (
	"fmt"

	"matrixas/export"
	"matrixas/matrix"
	"matrixas/settings"
)

// ExportConfig configures the history exports.
type ExportConfig struct {
	// Key is EXPORT_ENCRYPTION_KEY (or its _FILE), checked; nil = the key generated once
	// beside the database (export.DefaultKeyPath), which New loads or creates.
	Key *export.MasterKey
	// Dir is EXPORT_DIR; "" = export.DefaultDir beside the database.
	Dir string
	// Enabled turns on the daily export of every active room and the export before a
	// room is archived (MATRIX_HISTORY_EXPORT_ENABLED).
	Enabled bool
	// Hour is the UTC hour of the daily exports and of retention.
	Hour int
	// RetentionDays deletes older exports daily (each room's newest completed one is
	// kept); 0 keeps everything.
	RetentionDays int
	// Media also archives attachments (MATRIX_EXPORT_MEDIA).
	Media bool
	// Concurrency is how many exports run at once.
	Concurrency int

	// MaxFileBytes lowers the per-attachment limit (0 = export.DefaultMaxFileBytes), and
	// RoomIO replaces the bot's reading of rooms (nil = matrix.BotRoomIO). Neither is
	// read from the environment: only tests set them, to test the limit with small files
	// and to run exports without a homeserver.
	MaxFileBytes int64
	RoomIO       matrix.RoomIO
}

// loadExportConfig takes the export variables from e (already checked against their
// formats) and checks the master key with export.ParseMasterKey, naming the variable
// that gave it and never its value.
func loadExportConfig(e *env, getenv func(string) string) ExportConfig {
	c := ExportConfig{
		Dir:           e.value(settings.ExportDir),
		Hour:          int(e.number(settings.HistoryExportHour)),
		RetentionDays: int(e.number(settings.HistoryExportRetentionDays)),
		Concurrency:   int(e.number(settings.ExportConcurrency)),
	}
	c.Enabled, _ = settings.ParseBool(e.value(settings.HistoryExportEnabled))
	c.Media, _ = settings.ParseBool(e.value(settings.ExportMedia))
	if v := e.value(settings.ExportEncryptionKey); v != "" {
		name := settings.ExportEncryptionKey.Env
		if getenv(settings.ExportEncryptionKey.FileEnv()) != "" {
			name = settings.ExportEncryptionKey.FileEnv()
		}
		k, err := export.ParseMasterKey(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s: the key %w", name, err))
		}
		c.Key = k
	}
	return c
}
