package web

import (
	"fmt"
	"log/slog"
	"time"

	"matrixas/db"
	"matrixas/export"
	"matrixas/exports"
	"matrixas/matrix"
	"matrixas/metrics"
)

// newExportJob builds the history export job from the configuration: the master key
// (configured, or generated once beside the database), the folder, and a homeserver
// client whose overall timeout leaves room for a whole attachment download. onFinish
// is called after each export (the provisioning worker's Wake: a room waiting to be
// archived moves on).
func newExportJob(cfg *Config, store *db.Store, st *db.Settings, log *slog.Logger, m *metrics.Metrics, onFinish func()) (*exports.Job, error) {
	key := cfg.Export.Key
	if key == nil {
		path := export.DefaultKeyPath(cfg.DatabasePath)
		k, created, err := export.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("history export master key: %w", err)
		}
		if created {
			log.Warn("generated the history export master key: back it up with the database, or exports cannot be read after a restore",
				"file", path, "key_id", k.ID())
		}
		key = k
	}
	dir := exportDir(cfg)
	rio := cfg.Export.RoomIO
	if rio == nil {
		// A history page is small, but an attachment may take the whole download limit:
		// the client's own timeout must not cut it first.
		hc := m.InstrumentClient(matrix.HTTPClient(3*time.Second, export.DefaultDownloadTimeout+30*time.Second), metrics.CallerExport)
		rio = matrix.NewBotRoomIO(st.Matrix, hc)
	}
	log.Info("history exports", "dir", dir, "key_id", key.ID(), "daily", cfg.Export.Enabled, "media", cfg.Export.Media)
	return exports.New(store, st, rio, exports.Options{
		Export: export.Config{
			Dir: dir, Key: key, Media: cfg.Export.Media, MaxFileBytes: cfg.Export.MaxFileBytes,
		},
		Concurrency:   cfg.Export.Concurrency,
		Periodic:      cfg.Export.Enabled,
		Hour:          cfg.Export.Hour,
		RetentionDays: cfg.Export.RetentionDays,
		OnFinish:      onFinish,
		Observer:      m,
		Logger:        log,
	})
}

// exportDir is the folder of the export files: EXPORT_DIR, else beside the database.
func exportDir(cfg *Config) string {
	if cfg.Export.Dir != "" {
		return cfg.Export.Dir
	}
	return export.DefaultDir(cfg.DatabasePath)
}
