// Package crashtest holds end-to-end tests that run the server binary as a real process:
// crashes (SIGKILL) in the middle of work, restarts, and signals.
package crashtest
