// Package dendritetest runs a real Dendrite homeserver on loopback for
// integration tests.
//
// Integration tests call Require first, so that they are skipped unless
// MATRIXAS_INTEGRATION=1 is set, and then Start. The Dendrite binaries are
// installed on first use by BinDir into a per-user cache directory.
package dendritetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/synapseadmin"
)

const (
	// DefaultServerName is the server name used when Options.ServerName is empty.
	DefaultServerName = "localhost"
	// DefaultSharedSecret is the registration shared secret used when
	// Options.SharedSecret is empty.
	DefaultSharedSecret = "dendritetest-shared-secret"

	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	logTailLines = 60
	skipMessage  = "integration test: run `make test` (or set MATRIXAS_INTEGRATION=1) to run it against a real Dendrite"
)

// Enabled reports whether integration tests must run: the environment
// variable MATRIXAS_INTEGRATION is "1" (set by the README test command).
func Enabled() bool {
	return os.Getenv("MATRIXAS_INTEGRATION") == "1"
}

// Require skips the test unless Enabled reports true.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip(skipMessage)
	}
}

// Options configures Start. The zero value is usable.
type Options struct {
	// ServerName is the homeserver's server name; default "localhost".
	ServerName string
	// RegistrationFiles are absolute paths of appservice registration YAML
	// files; may be empty.
	RegistrationFiles []string
	// SharedSecret is the registration_shared_secret used by RegisterUser;
	// default DefaultSharedSecret.
	SharedSecret string
	// DataDir holds keys, config, databases, media and dendrite.log; default
	// t.TempDir(). Pass an existing directory to reuse its state.
	DataDir string
	// Federation keeps the federation and key routes (/_matrix/federation/*,
	// /_matrix/key/*) that the default config turns off. Nothing is fetched
	// from the network either way: key_perspectives stays empty and rooms
	// created in tests have no remote servers.
	Federation bool
}

// Server is a running Dendrite started by Start.
type Server struct {
	// URL is the client-server API base URL, http://127.0.0.1:<port>.
	URL string
	// ServerName is the homeserver's server name (the part after ':' in user IDs).
	ServerName string
	// DataDir is the directory with keys, config, databases and dendrite.log.
	DataDir string
	// SharedSecret is the registration_shared_secret.
	SharedSecret string

	binDir    string
	addr      string // 127.0.0.1:<port>
	generated []byte // output of generate-config

	federation bool // Options.Federation

	mu       sync.Mutex
	regFiles []string
	proc     *process
}

// process is one run of the dendrite binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result, valid after exited is closed
}

// Start installs Dendrite if needed (see BinDir), writes a signing key and a
// config into opts.DataDir, starts Dendrite on a free loopback port and waits
// (up to 60 s) until GET /_matrix/client/versions answers 200. It registers a
// t.Cleanup that stops Dendrite and, if the test failed, logs the last lines
// of <DataDir>/dendrite.log, where Dendrite's stdout and stderr go. Any
// failure to start is fatal to the test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	binDir, err := BinDir()
	if err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	s := &Server{
		ServerName:   opts.ServerName,
		DataDir:      opts.DataDir,
		SharedSecret: opts.SharedSecret,
		binDir:       binDir,
		federation:   opts.Federation,
	}
	if s.ServerName == "" {
		s.ServerName = DefaultServerName
	}
	if s.SharedSecret == "" {
		s.SharedSecret = DefaultSharedSecret
	}
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
	}
	if s.DataDir, err = filepath.Abs(s.DataDir); err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	s.SetRegistrationFiles(opts.RegistrationFiles...)

	port, err := freePort()
	if err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.URL = "http://" + s.addr

	if err := s.prepare(); err != nil {
		t.Fatalf("dendritetest: %v", err)
	}

	startFailed := false
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() && !startFailed {
			t.Logf("dendritetest: last lines of %s:\n%s", s.logPath(), s.LogTail(logTailLines))
		}
	})

	s.mu.Lock()
	err = s.start()
	s.mu.Unlock()
	if err != nil {
		startFailed = true
		t.Fatalf("dendritetest: %v\nlast lines of %s:\n%s", err, s.logPath(), s.LogTail(logTailLines))
	}
	return s
}

// SetRegistrationFiles sets the appservice registration files (absolute
// paths) that Dendrite loads at the next Restart. Dendrite reads them only at
// start-up.
func (s *Server) SetRegistrationFiles(files ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regFiles = append([]string(nil), files...)
}

// Restart stops Dendrite (SIGTERM, then SIGKILL after 10 s) and starts it
// again on the same port with the same data dir and a freshly written config,
// so that registration files set by SetRegistrationFiles are picked up. It
// waits for readiness like Start.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	if err := s.start(); err != nil {
		return fmt.Errorf("dendritetest: restart: %w\nlast lines of %s:\n%s", err, s.logPath(), s.LogTail(logTailLines))
	}
	return nil
}

// PID is the process id of the running Dendrite, or 0 when it is stopped (benchmarks
// read its CPU time from /proc).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.cmd.Process == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop stops Dendrite: SIGTERM, then SIGKILL if it has not exited after 10 s.
// Stopping a stopped Server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// RegisterUser creates a normal (non-admin) user with the shared-secret
// registration API (/_synapse/admin/v1/register) and returns its user ID and
// an access token.
func (s *Server) RegisterUser(ctx context.Context, username, password string) (userID string, accessToken string, err error) {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return "", "", fmt.Errorf("dendritetest: %w", err)
	}
	admin := synapseadmin.Client{Client: cli}
	resp, err := admin.SharedSecretRegister(ctx, s.SharedSecret, synapseadmin.ReqSharedSecretRegister{
		Username: username,
		Password: password,
		Admin:    false,
	})
	if err != nil {
		return "", "", fmt.Errorf("dendritetest: registering %q: %w", username, err)
	}
	return resp.UserID.String(), resp.AccessToken, nil
}

// LogTail returns the last n lines of <DataDir>/dendrite.log.
func (s *Server) LogTail(n int) string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const maxRead = 256 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		if _, err := f.Seek(-maxRead, io.SeekEnd); err != nil {
			return fmt.Sprintf("(reading log: %v)", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	return tail(string(data), n)
}

func (s *Server) logPath() string    { return filepath.Join(s.DataDir, "dendrite.log") }
func (s *Server) configPath() string { return filepath.Join(s.DataDir, "dendrite.yaml") }
func (s *Server) keyPath() string    { return filepath.Join(s.DataDir, "matrix_key.pem") }

// prepare creates the signing key (unless DataDir already has one, so reused
// state stays valid) and runs generate-config once.
func (s *Server) prepare() error {
	if _, err := os.Stat(s.keyPath()); errors.Is(err, os.ErrNotExist) {
		cmd := exec.Command(filepath.Join(s.binDir, "generate-keys"), "--private-key", s.keyPath())
		cmd.Dir = s.DataDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("generate-keys: %w\n%s", err, out)
		}
	} else if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.binDir, "generate-config"), "-dir", s.DataDir, "-server", s.ServerName)
	cmd.Dir = s.DataDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("generate-config: %w\n%s", err, stderr.String())
	}
	s.generated = out
	return nil
}

// writeConfig writes dendrite.yaml: the generated config with the test
// settings applied.
func (s *Server) writeConfig() error {
	var cfg map[string]any
	if err := yaml.Unmarshal(s.generated, &cfg); err != nil {
		return fmt.Errorf("parsing generated config: %w", err)
	}
	regFiles := make([]any, 0, len(s.regFiles))
	for _, f := range s.regFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		regFiles = append(regFiles, abs)
	}
	edits := []struct {
		path  string
		value any
	}{
		{"global.server_name", s.ServerName},
		// Relative paths would be resolved against Dendrite's working directory.
		{"global.private_key", s.keyPath()},
		{"global.jetstream.storage_path", s.DataDir},
		{"media_api.base_path", filepath.Join(s.DataDir, "media")},
		{"sync_api.search.index_path", filepath.Join(s.DataDir, "searchindex")},
		// No network: no outbound federation, no notary servers, no identity
		// servers, no phone-home stats.
		{"global.disable_federation", !s.federation},
		{"federation_api.key_perspectives", []any{}},
		{"global.trusted_third_party_id_servers", []any{}},
		{"global.report_stats.enabled", false},
		{"client_api.registration_shared_secret", s.SharedSecret},
		{"client_api.rate_limiting.enabled", false},
		{"app_service_api.config_files", regFiles},
		// Cheap password hashing keeps RegisterUser and logins fast.
		{"user_api.bcrypt_cost", 4},
		// Log to stdout/stderr only (Dendrite always adds an info-level
		// std hook), which Start sends to dendrite.log.
		{"logging", []any{}},
	}
	for _, e := range edits {
		if err := setPath(cfg, e.path, e.value); err != nil {
			return fmt.Errorf("editing generated config: %w", err)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(s.configPath(), out, 0o600)
}

// setPath sets a dotted key in a YAML mapping. The key must already exist in
// the generated config, so that a misspelt key (which Dendrite would silently
// ignore) is an error.
func setPath(m map[string]any, path string, value any) error {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: no mapping %q in generated config", path, k)
		}
		m = next
	}
	last := keys[len(keys)-1]
	if _, ok := m[last]; !ok {
		return fmt.Errorf("%s: key %q not in generated config", path, last)
	}
	m[last] = value
	return nil
}

// start writes the config, starts Dendrite and waits until it is ready.
// s.mu must be held.
func (s *Server) start() error {
	if s.proc != nil {
		return errors.New("already running")
	}
	if err := s.writeConfig(); err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== dendritetest: %s starting dendrite on %s (registration files %v)\n",
		time.Now().Format(time.RFC3339Nano), s.addr, s.regFiles)
	cmd := exec.Command(filepath.Join(s.binDir, "dendrite"),
		"-config", s.configPath(),
		"-http-bind-address", s.addr,
	)
	cmd.Dir = s.DataDir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting dendrite: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	s.proc = p

	if err := s.waitReady(p); err != nil {
		s.stop()
		return err
	}
	return nil
}

// waitReady polls GET /_matrix/client/versions until it answers 200, the
// process exits or readyTimeout passes.
func (s *Server) waitReady(p *process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	url := s.URL + "/_matrix/client/versions"
	var lastErr error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("dendrite exited before it was ready: %v", p.err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("dendrite not ready after %s: %v", readyTimeout, lastErr)
		}
		select {
		case <-p.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop terminates the running process, if any. s.mu must be held.
func (s *Server) stop() {
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// freePort returns a TCP port that is free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
