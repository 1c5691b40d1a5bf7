// Package e2e holds the end-to-end tests of the staff dashboard: the real server, a real
// Dendrite and a real headless Chromium, clicking through the pages as staff would, with
// JavaScript on and off. It has no code of its own; run it with MATRIXAS_INTEGRATION=1
// (UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots for the README).
package e2e
