// Command matrixas connects a project platform to a Matrix homeserver as an application
// service, with a staff dashboard and a JSON API to set it up, check it and move it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/settings"
	"matrixas/views"
	"matrixas/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its usage line, examples, and what it runs.
type command struct {
	name, usage, summary, examples string
	run                            func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what a subcommand may use: its streams and the environment.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// passwordCost is the bcrypt cost of the password hashes a command makes; 0 (as main
	// leaves it) = auth.PasswordCost. Tests lower it: one cost-12 hash takes seconds
	// under the race detector.
	passwordCost int
}

// exitUsage is returned for bad arguments (exit code 2).
//
//lint:ignore ST1012 a sentinel named for the exit it causes, not an error to wrap
var exitUsage = errors.New("usage")

func commands() []*command {
	return []*command{
		{name: "serve", usage: "serve", summary: "run the HTTP server (the default)", run: runServe,
			examples: "  matrixas serve\n  LISTEN_ADDR=0.0.0.0:8080 PUBLIC_URL=https://chat-bridge.example.org matrixas serve"},
		{name: "createstaff", usage: "createstaff [--password-file FILE] USERNAME", summary: "create a staff user (password from stdin or a file, never from arguments)", run: runCreateStaff,
			examples: "  printf '%s\\n' 'a long password' | matrixas createstaff alice\n  matrixas createstaff --password-file /run/secrets/pw alice"},
		{name: "createtoken", usage: "createtoken [--name NAME] USERNAME", summary: "print a new API token for a user, once", run: runCreateToken,
			examples: "  matrixas createtoken --name ci alice"},
		{name: "migrate", usage: "migrate", summary: "apply pending database migrations and print the schema version", run: runMigrate,
			examples: "  DATABASE_PATH=/data/matrixas.db matrixas migrate"},
		{name: "version", usage: "version", summary: "print the version", run: runVersion, examples: "  matrixas version"},
		{name: "backup", usage: "backup DEST", summary: "write a consistent copy of the live database to DEST (safe while the server runs)", run: runBackup,
			examples: "  matrixas backup /backups/matrixas-$(date +%F).db\n  # restore: stop the server, copy the file to DATABASE_PATH, start it"},
		{name: "registration", usage: "registration", summary: "print the current appservice registration YAML (after setup)", run: runRegistration,
			examples: "  matrixas registration > " + views.RegistrationPath},
		{name: "openapi", usage: "openapi [--format FORMAT]", summary: "print the OpenAPI document of the JSON API, FORMAT json (default) or yaml (as GET /api/schema/ serves it)", run: runOpenAPI,
			examples: "  matrixas openapi > openapi.json\n  matrixas openapi --format yaml > openapi.yaml"},
		{name: "sync", usage: "sync [--dry-run]", summary: "run one full reconcile with the platform (WALDUR_URL) now and print the differences", run: runSync,
			examples: "  matrixas sync --dry-run\n  matrixas sync"},
		{name: "link-matrix-account", usage: "link-matrix-account [--all] [USERNAME @id:domain]", summary: "link an existing Matrix account to a user on purpose (one, or every refused account with --all)", run: runLinkMatrixAccount,
			examples: "  matrixas link-matrix-account alice @alice:example.org\n  matrixas link-matrix-account --all"},
		{name: "reprovision", usage: "reprovision [--dry-run] [--yes]", summary: "re-create every active room and user on the homeserver now configured (asks first)", run: runReprovision,
			examples: "  matrixas reprovision --dry-run\n  matrixas reprovision --yes"},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if code := exitCode(run(ctx, env, os.Args[1:]), env.stderr); code != 0 {
		stop()
		os.Exit(code)
	}
}

// exitCode maps run's error to the exit status: 0, 2 for bad usage (the usage was
// printed), else 1 after printing the error.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, exitUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
}

// run parses the subcommand and runs it.
func run(ctx context.Context, env *cliEnv, args []string) error {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if name == "help" && len(args) > 0 {
		return commandHelp(ctx, env, args)
	}
	if name == "--version" {
		name = "version"
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage(env.stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, env, args)
		}
	}
	fmt.Fprintf(env.stderr, "unknown command %q\n\n", name)
	usage(env.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: matrixas [COMMAND] [OPTIONS]")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'matrixas help COMMAND' (or 'matrixas COMMAND --help') for a command's options and examples.")
	fmt.Fprintln(w, "\nConfiguration is read from the environment:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range settings.FromEnvironment() {
		help := s.Hint
		if s.Kind == settings.Runtime {
			help += " Set here, it fixes the setting (shown locked in the dashboard)."
		}
		if !strings.Contains(help, "(default") { // some say it in their own words
			def := s.Default
			if def == "" {
				def = "unset"
			}
			help += " (default: " + def + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Env, help)
		if s.Secret {
			fmt.Fprintf(tw, "  %s\tfile holding %s\n", s.FileEnv(), s.Env)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nExit status: 0 on success (and for --help), 1 on failure (bad configuration included), 2 for bad usage.")
	fmt.Fprintln(w, "Running it in production (reverse proxy, homeserver, backups, metrics): docs/OPERATIONS.md")
}

// flags returns a FlagSet whose --help prints the command's usage and examples.
func (c *command) flags(env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: matrixas %s\n\n%s.\n", c.usage, strings.ToUpper(c.summary[:1])+c.summary[1:])
		fs.PrintDefaults()
		fmt.Fprintf(env.stderr, "\nExamples:\n%s\n", c.examples)
	}
	return fs
}

// parse parses args; --help is a success (exit 0), other errors are usage errors.
func (c *command) parse(env *cliEnv, fs *flag.FlagSet, args []string, nargs int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, exitUsage
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return nil, exitUsage
	}
	return fs.Args(), nil
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	panic("no command " + name)
}

// openStore loads the configuration and opens (and migrates) the database.
func openStore(ctx context.Context, env *cliEnv) (*web.Config, *db.Store, error) {
	cfg, err := web.LoadConfig(env.getenv)
	if err != nil {
		return nil, nil, err
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

func runServe(ctx context.Context, env *cliEnv, args []string) error {
	c := find("serve")
	if _, err := c.parse(env, c.flags(env), args, 0); err != nil {
		return helpOK(err)
	}
	cfg, store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg.PasswordCost = env.passwordCost
	web.TuneRuntime(env.getenv)
	logw := web.NewBufferedWriter(env.stderr)
	defer logw.Close()
	log := web.NewLogger(cfg, logw)
	noStaff := func(err error) {
		// A restored database, say: serve anyway (the homeserver and the API tokens do
		// not need the dashboard), and say how to repair it.
		log.Error("no active staff user: serving anyway, but nobody can sign in to the dashboard",
			"error", err.Error(), "repair", "matrixas createstaff NAME")
	}
	first, err := web.PrepareBootstrap(ctx, cfg, store)
	if errors.Is(err, web.ErrNoActiveStaff) {
		noStaff(err)
	} else if err != nil {
		return err
	}
	srv, err := web.New(ctx, cfg, store, log, version)
	if err != nil {
		return err
	}
	if first == nil {
		return srv.Run(ctx)
	}
	// First run: the staff user's password is hashed (bcrypt, most of a first start's
	// time) while the server starts, as nothing but a sign-in needs it; sign-ins wait.
	created := make(chan struct{})
	srv.SignInsWaitFor(created)
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		defer close(created)
		password, err := first.Create(ctx)
		switch {
		case errors.Is(err, web.ErrNoActiveStaff):
			noStaff(err)
		case err != nil:
			stop(err) // the server stops, and serve returns the error
		case cfg.BootstrapPasswordFile != "":
			log.Warn("first run: created staff user with the password from BOOTSTRAP_PASSWORD_FILE", "username", first.Username)
		default:
			// The one place a secret is shown: the first-run password, once, so the
			// README's run command alone leads to a working login. It is not logged again.
			loginURL := "http://" + cfg.ListenAddr + "/login"
			if cfg.PublicURL != "" {
				loginURL = cfg.PublicURL + "/login"
			}
			fmt.Fprintf(env.stderr, "\n  First run: created staff user %q with password %s\n  Sign in at %s and change it under Account.\n\n", first.Username, password, loginURL)
		}
	}()
	err = srv.Run(ctx)
	<-created // the store stays open until the user is written
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// readPassword reads the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func runCreateStaff(ctx context.Context, env *cliEnv, args []string) error {
	c := find("createstaff")
	fs := c.flags(env)
	pwFile := fs.String("password-file", "", "read the password from this file instead of standard input")
	rest, err := c.parse(env, fs, args, 1)
	if err != nil {
		return helpOK(err)
	}
	var password string
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return err
		}
		password = strings.TrimRight(string(b), "\r\n")
	} else {
		if f, ok := env.stdin.(*os.File); ok && isTerminal(f) {
			fmt.Fprint(env.stderr, "Password (input is shown): ")
		}
		if password, err = readPassword(env.stdin); err != nil {
			return err
		}
	}
	if err := auth.CheckPasswordPolicy(rest[0], password); err != nil {
		return fmt.Errorf("the password for %q is refused: %w", rest[0], err)
	}
	hash, err := auth.NewPasswords(env.passwordCost).Hash(password)
	if err != nil {
		return err
	}
	_, store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	u := &db.User{Username: rest[0], IsStaff: true, IsActive: true, PasswordHash: hash}
	if err := store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("a user named %q already exists", rest[0])
		}
		return err
	}
	fmt.Fprintf(env.stdout, "created staff user %s (uuid %s)\n", u.Username, u.UUID)
	return nil
}

func runCreateToken(ctx context.Context, env *cliEnv, args []string) error {
	c := find("createtoken")
	fs := c.flags(env)
	name := fs.String("name", "cli", "a label to tell the token apart")
	rest, err := c.parse(env, fs, args, 1)
	if err != nil {
		return helpOK(err)
	}
	_, store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.UserByUsername(ctx, rest[0])
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no user named %q", rest[0])
	}
	if err != nil {
		return err
	}
	token, prefix, hash := auth.NewAPIToken()
	if _, err := store.CreateAPIToken(ctx, u.ID, *name, prefix, hash); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, token)
	return nil
}

func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	c := find("migrate")
	if _, err := c.parse(env, c.flags(env), args, 0); err != nil {
		return helpOK(err)
	}
	cfg, err := web.LoadConfig(env.getenv)
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := store.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "database %s is at schema version %d\n", cfg.DatabasePath, v)
	return nil
}

func runVersion(ctx context.Context, env *cliEnv, args []string) error {
	c := find("version")
	if _, err := c.parse(env, c.flags(env), args, 0); err != nil {
		return helpOK(err)
	}
	fmt.Fprintf(env.stdout, "matrixas %s (schema %d)\n", version, db.LatestVersion())
	return nil
}

// helpOK turns --help into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
