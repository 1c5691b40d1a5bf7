package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"matrixas/apidoc"
	"matrixas/internal/testbin"
)

// TestEveryCommandHasHelp runs each subcommand's --help, -h and 'help COMMAND': exit 0,
// the usage line, the summary and examples that use the command, and no side effects.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		if c.summary == "" || c.examples == "" {
			t.Errorf("command %s has no summary or no examples", c.name)
		}
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				cl := newCLI(t)
				err := cl.run(context.Background(), args...)
				var errOut bytes.Buffer
				if code := exitCode(err, &errOut); code != 0 {
					t.Fatalf("exit code %d, want 0 (err %v)\nstderr: %s", code, err, cl.stderr)
				}
				out := cl.stderr.String()
				for _, want := range []string{"Usage: matrixas " + c.usage, "Examples:", "matrixas " + c.name} {
					if !strings.Contains(out, want) {
						t.Errorf("help lacks %q:\n%s", want, out)
					}
				}
				examples := out[strings.Index(out, "Examples:"):]
				if !strings.Contains(examples, "matrixas "+c.name) {
					t.Errorf("no example runs 'matrixas %s':\n%s", c.name, examples)
				}
				if cl.stdout.String() != "" {
					t.Errorf("help wrote to standard output: %q", cl.stdout)
				}
				if _, err := os.Stat(cl.env["DATABASE_PATH"]); err == nil {
					t.Error("--help created the database")
				}
			})
		}
	}
}

// TestTopLevelHelp lists every command and says what the exit statuses mean.
func TestTopLevelHelp(t *testing.T) {
	cl := newCLI(t)
	if err := cl.run(context.Background(), "--help"); err != nil {
		t.Fatal(err)
	}
	out := cl.stdout.String()
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("--help does not list %s", c.name)
		}
	}
	for _, want := range []string{"Exit status: 0", "2 for bad usage", "docs/OPERATIONS.md", "matrixas help COMMAND"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Count(line, "(default") > 1 {
			t.Errorf("a variable states its default twice: %s", line)
		}
	}
	if _, err := os.Stat(filepath.Join("docs", "OPERATIONS.md")); err != nil { // tests run in the module root
		t.Errorf("--help points at docs/OPERATIONS.md: %v", err)
	}
}

// TestExitStatuses: 0 ok, 2 bad usage (with the usage printed), 1 any other failure
// (with "error: ..." printed).
func TestExitStatuses(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   int
		stderr string
	}{
		{"version", nil, []string{"version"}, 0, ""},
		{"--version", nil, []string{"--version"}, 0, ""},
		{"help for an unknown command", nil, []string{"help", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{"help for two commands", nil, []string{"help", "serve", "migrate"}, 2, "Usage: matrixas help"},
		{"backup without DEST", nil, []string{"backup"}, 2, "Usage: matrixas backup DEST"},
		{"registration with an argument", nil, []string{"registration", "x"}, 2, "Usage: matrixas registration"},
		{"openapi with a bad format", nil, []string{"openapi", "--format", "toml"}, 2, `"toml" is not json or yaml`},
		{"openapi with an argument", nil, []string{"openapi", "x"}, 2, "Usage: matrixas openapi"},
		{"registration before setup", nil, []string{"registration"}, 1, "error: the appservice is not set up yet"},
		{"token for nobody", nil, []string{"createtoken", "nobody"}, 1, `error: no user named "nobody"`},
		{"bad configuration", map[string]string{"LOG_LEVEL": "loud"}, []string{"migrate"}, 1, "LOG_LEVEL"},
		{"bad metrics configuration", map[string]string{"METRICS_TOKEN": "short"}, []string{"migrate"}, 1, "METRICS_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCLI(t)
			for k, v := range tt.env {
				cl.env[k] = v
			}
			err := cl.run(context.Background(), tt.args...)
			var errOut bytes.Buffer
			code := exitCode(err, &errOut)
			if code != tt.want {
				t.Fatalf("exit code %d, want %d (err %v)\nstderr: %s", code, tt.want, err, cl.stderr)
			}
			all := cl.stderr.String() + errOut.String()
			if !strings.Contains(all, tt.stderr) {
				t.Errorf("standard error lacks %q:\n%s", tt.stderr, all)
			}
			if code == 2 && !errors.Is(err, exitUsage) {
				t.Errorf("exit 2 without exitUsage: %v", err)
			}
		})
	}
}

func TestOpenAPICommand(t *testing.T) {
	tests := []struct {
		args []string
		want []byte
	}{
		{[]string{"openapi"}, apidoc.JSON()},
		{[]string{"openapi", "--format", "json"}, apidoc.JSON()},
		{[]string{"openapi", "--format", "yaml"}, apidoc.YAML()},
	}
	for _, tt := range tests {
		cl := newCLI(t)
		if err := cl.run(context.Background(), tt.args...); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if cl.stdout.String() != string(tt.want) {
			t.Errorf("%v does not print the document", tt.args)
		}
		if _, err := os.Stat(cl.env["DATABASE_PATH"]); err == nil {
			t.Errorf("%v created the database", tt.args)
		}
	}
}

// TestExitStatusesOfTheBinary checks the statuses a shell really sees, through main
// and os.Exit.
func TestExitStatusesOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Build(t)
	dir := t.TempDir()
	tests := []struct {
		args   []string
		want   int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "Usage: matrixas [COMMAND]", ""},
		{[]string{"backup", "--help"}, 0, "", "Usage: matrixas backup DEST"},
		{[]string{"help", "createtoken"}, 0, "", "Usage: matrixas createtoken"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"backup"}, 2, "", "Usage: matrixas backup DEST"},
		{[]string{"registration"}, 1, "", "error: the appservice is not set up yet"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "DATABASE_PATH="+filepath.Join(dir, "cli.db"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", code, tt.want, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("output lacks %q / %q\nstdout: %s\nstderr: %s", tt.stdout, tt.stderr, stdout.String(), stderr.String())
			}
		})
	}
}
