package bot

import (
	"strings"
	"unicode"
)

// The notifications the bot posts into a project's room, as Markdown for Render. Every
// name or title in them was written by someone else and is escaped (EscapeMarkdown).

// RoleName is how a role reads in a notification: the platform's role name with its dot
// replaced and each word title-cased ("PROJECT.ADMIN" -> "Project Admin").
func RoleName(role string) string {
	words := strings.FieldsFunc(role, func(r rune) bool { return r == '.' || r == '_' || unicode.IsSpace(r) })
	for i, w := range words {
		w = strings.ToLower(w)
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// PlatformRole is the platform's name of one of this server's project roles ("admin" ->
// "PROJECT.ADMIN"), for notifications about roles pushed through the directory API.
func PlatformRole(role string) string {
	return "PROJECT." + strings.ToUpper(role)
}

// RoleGranted words a role given to someone: "NAME has been granted the Project Admin role."
func RoleGranted(name, role string) string {
	return EscapeMarkdown(name) + " has been granted the " + EscapeMarkdown(RoleName(role)) + " role."
}

// RoleRevoked words a role taken from someone: "NAME has lost the Project Member role."
func RoleRevoked(name, role string) string {
	return EscapeMarkdown(name) + " has lost the " + EscapeMarkdown(RoleName(role)) + " role."
}

// StaffJoined words staff joining through the room's join action: "NAME joined the room."
func StaffJoined(name string) string { return EscapeMarkdown(name) + " joined the room." }

// StaffLeft words staff leaving through the room's leave action: "NAME left the room."
func StaffLeft(name string) string { return EscapeMarkdown(name) + " left the room." }

// RoomDeactivated is posted when the room is disabled, before anyone is removed; with
// projectTerminated, because its project was deleted on the platform.
func RoomDeactivated(projectTerminated bool) string {
	if projectTerminated {
		return "Chat room was deactivated due to project termination"
	}
	return "Chat room was deactivated"
}

// RoomReactivated is posted when an archived room is active again.
func RoomReactivated() string { return "Chat room was reactivated" }

// orderVerbs are the order states announced and how they read; an order's creation and
// its waiting states are not announced.
var orderVerbs = map[string]string{
	"executing": "approved",
	"done":      "completed",
	"rejected":  "rejected",
	"canceled":  "canceled",
	"erred":     "failed",
}

// OrderChanged announces an order that reached state: "Order approved: TYPE of OFFERING
// (requested by USER)." for executing, done, rejected, canceled and erred; ok is false
// for any other state (nothing to announce). Without a requester the parenthesis is left
// out.
func OrderChanged(state, orderType, offering, requestedBy string) (text string, ok bool) {
	verb, ok := orderVerbs[state]
	if !ok {
		return "", false
	}
	text = "Order " + verb + ": " + EscapeMarkdown(orderType) + " of " + EscapeMarkdown(offering)
	if strings.TrimSpace(requestedBy) != "" {
		text += " (requested by " + EscapeMarkdown(requestedBy) + ")"
	}
	return text + ".", true
}
