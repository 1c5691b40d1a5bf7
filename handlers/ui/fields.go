package ui

import (
	"matrixas/db"
	"matrixas/settings"
	"matrixas/views"
)

// settingField is setting s as a form field with element id idPrefix+key: its label and
// hint from the settings table, its resolved value (never a secret's: only whether one
// is set), locked with the reason when the environment fixes it.
func settingField(idPrefix string, s *settings.Setting, ms *db.MatrixSettings) views.SettingField {
	f := views.SettingField{
		Field:  views.Field{Name: s.Key, ID: idPrefix + s.Key, Label: s.Label, Help: s.Hint, Mono: true},
		Secret: s.Secret,
	}
	if s.Secret {
		f.SecretSet = ms.Value(s) != ""
	} else {
		f.Value = ms.Value(s)
	}
	if ms.Fixed[s.Key] {
		f.Locked = s.FixedHint()
	}
	return f
}

// showSubmitted puts what a refused form sent back in its fields, with each field's
// error: editable ones show what was typed, locked ones the value in force (not what a
// crafted form sent), secrets nothing.
func showSubmitted(fields []views.SettingField, typed, errs map[string]string) {
	for i := range fields {
		f := &fields[i]
		if f.Locked == "" && !f.Secret {
			f.Value = typed[f.Name]
		}
		f.Error = errs[f.Name]
	}
}
