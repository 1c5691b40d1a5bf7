// Package settings describes every setting of the server once, in one table (All): its
// environment variable, its database key, whether it is a secret, how a value is
// checked, and how the dashboard labels and explains it. The configuration loader
// (web.LoadConfig), the runtime settings store (db.Settings), the setup API and the
// Setup and Settings pages, the diagnostics, --help and the README test all read it.
//
// A setting is either start-up configuration, read once from the environment when the
// server starts, or a runtime setting, kept in the database and changed while the server
// runs (by setup or on the Settings page); a runtime setting's environment variable,
// when set, fixes its value, which the dashboard then shows locked.
//
// Adding a setting: add one entry to All (and a variable for it, to name it in code).
// A start-up setting gets a field in web.Config and a line in LoadConfig that stores
// its (already checked) value; a runtime setting is read with db.MatrixSettings.Value,
// and with Editable it appears on the Settings page.
package settings

import "strings"

// Kind says where a setting's value lives.
type Kind uint8

const (
	// Startup configuration is read once from the environment at start; changing it
	// needs a restart.
	Startup Kind = iota
	// Runtime settings live in the database and change while the server runs; the
	// environment variable, when set, fixes the value.
	Runtime
)

// Setting describes one setting.
type Setting struct {
	// Env is the environment variable; "" for a runtime setting only setup writes.
	Env string
	// Key is the database key of a runtime setting, which is also its field name in forms
	// and API requests; a start-up setting has one only when the server keeps a generated
	// value in the database when the variable is unset (SESSION_KEY).
	Key  string
	Kind Kind
	// Default is the value when nothing sets one.
	Default string
	// Secret values are never shown, logged or echoed in errors, and the environment
	// may give them as a file (Env + "_FILE").
	Secret bool
	// Required start-up settings must not be empty; a required runtime setting must have
	// a value to save the Settings page.
	Required bool
	// Editable runtime settings are edited on the Settings page.
	Editable bool
	// Label names the setting in the dashboard.
	Label string
	// Hint is one or two sentences on what to give: --help prints it, the dashboard
	// shows it under the field.
	Hint string
	// Format cleans and checks a value; nil takes any value as given.
	Format *Format
}

// Clean normalises v as the setting stores it: spaces trimmed (a secret is taken as
// typed), then the format's own cleaning (URLs lose a trailing slash).
func (s *Setting) Clean(v string) string {
	if !s.Secret {
		v = strings.TrimSpace(v)
	}
	if s.Format != nil && s.Format.Clean != nil {
		v = s.Format.Clean(v)
	}
	return v
}

// Validate reports what is wrong with a cleaned, non-empty value, as a sentence for the
// person who gave it (a form field, an API field); nil when it is fine.
func (s *Setting) Validate(v string) error {
	if s.Format == nil || s.Format.Check == nil {
		return nil
	}
	return s.Format.Check(v)
}

// FileEnv is the variable that gives a secret setting's value as a file.
func (s *Setting) FileEnv() string { return s.Env + "_FILE" }

// FixedHint is the locked field's explanation when the environment fixes the setting.
func (s *Setting) FixedHint() string {
	return "Set by the environment variable " + s.Env + "; change it there and restart this server."
}

// RuntimeSettings lists the runtime settings in table order.
func RuntimeSettings() []*Setting { return filter(func(s *Setting) bool { return s.Kind == Runtime }) }

// EditableSettings lists the settings of the Settings page, in table order.
func EditableSettings() []*Setting { return filter(func(s *Setting) bool { return s.Editable }) }

// FromEnvironment lists the settings an environment variable sets, in table order: the
// configuration --help and the README document.
func FromEnvironment() []*Setting { return filter(func(s *Setting) bool { return s.Env != "" }) }

func filter(keep func(*Setting) bool) []*Setting {
	var out []*Setting
	for _, s := range All {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
