package bot

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		body   string
		name   string
		isCmd  bool
		reason string
	}{
		{"!help", "help", true, "plain"},
		{"!STATUS", "status", true, "lowercased"},
		{"!Orders last 10", "orders", true, "arguments ignored"},
		{"  \n!members", "members", true, "leading space"},
		{"!status\nmore text", "status", true, "word ends at a line break"},
		{"!x", "x", true, "unknown commands are commands too"},
		{"!!", "!", true, "odd but a command"},
		{"!", "", false, "nothing after the !"},
		{"! help", "", false, "space after the !"},
		{"help", "", false, "no !"},
		{"hello !help", "", false, "not the first word"},
		{"", "", false, "empty"},
		{"> <@a:b> !help\n\nthanks", "", false, "a reply quoting a command"},
	}
	for _, tt := range tests {
		name, ok := Parse(tt.body)
		if name != tt.name || ok != tt.isCmd || IsCommand(tt.body) != tt.isCmd {
			t.Errorf("%s: Parse(%q) = %q, %v; want %q, %v", tt.reason, tt.body, name, ok, tt.name, tt.isCmd)
		}
	}
}

func TestUnknownCommandEchoIsBounded(t *testing.T) {
	got := UnknownCommand(strings.Repeat("a", 500))
	if !strings.HasPrefix(got, "Unknown command: `!"+strings.Repeat("a", maxEcho)+"…`\n\n") || !strings.HasSuffix(got, HelpText) {
		t.Errorf("%q", got)
	}
}
