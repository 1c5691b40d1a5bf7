package views

import (
	"fmt"
	"strconv"
	"time"
)

// timeLayout is how the dashboard shows a moment: unambiguous, sortable, in UTC.
const timeLayout = "2006-01-02 15:04:05 UTC"

// FormatTime shows t in UTC, or "—" for the zero time (never happened).
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(timeLayout)
}

// isoTime is the machine-readable form for <time datetime>.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Ago says how long before now t was, in words ("3 minutes ago"); "never" for the zero time.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s ago"
	}
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	default:
		return plural(int64(d/(24*time.Hour)), "day")
	}
}

// itoa formats an integer for templates.
func itoa[T ~int | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// plural returns "1 room" / "2 rooms".
func plural[T ~int | ~int64](n T, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// boolText is "true" or "false", for data attributes tests read.
func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
