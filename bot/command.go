package bot

import (
	"strings"
	"unicode"
)

// Commands the bot answers.
const (
	CmdHelp    = "help"
	CmdStatus  = "status"
	CmdOrders  = "orders"
	CmdMembers = "members"
)

// maxEcho bounds how much of an unknown command's word the answer repeats.
const maxEcho = 32

// Parse reads a message's text as a command: its first word starts with "!" and has at
// least one character after it; the command is that rest, lowercased (arguments are
// ignored). ok is false when the message is no command.
func Parse(body string) (name string, ok bool) {
	body = strings.TrimLeftFunc(body, unicode.IsSpace)
	if !strings.HasPrefix(body, "!") {
		return "", false
	}
	word := body[1:]
	if i := strings.IndexFunc(word, unicode.IsSpace); i >= 0 {
		word = word[:i]
	}
	if word == "" {
		return "", false
	}
	return strings.ToLower(word), true
}

// IsCommand reports whether a message's text is a bot command (see Parse): what the
// webhook picks out of a transaction to queue for an answer.
func IsCommand(body string) bool {
	_, ok := Parse(body)
	return ok
}
