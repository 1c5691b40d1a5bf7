// Package views holds the templ components: one page is one component taking one view
// model, and each htmx swap target is a component of its own.
package views

// Page is what every page's layout needs: its title, the nav entry to mark, who is
// logged in, and the flash messages to show once.
type Page struct {
	Title    string
	Active   string // nav key: overview, setup, settings, diagnostics, rooms, exports, projects, users, transactions, outbox, platform, reprovision, account
	Username string // "" when nobody is logged in
	IsStaff  bool
	Flashes  []Flash
	Version  string // the server's version, shown in the footer
}

// Flash is a one-time message shown after an action.
type Flash struct {
	Kind    FlashKind
	Message string
}

// FlashKind says how a flash is shown: its colour and its ARIA role.
type FlashKind string

// The kinds of flash.
const (
	FlashSuccess FlashKind = "success"
	FlashError   FlashKind = "error" // an alert
	FlashInfo    FlashKind = "info"
)

// NavItem is one entry of the top navigation.
type NavItem struct {
	Key, Label, Href string
}

// Nav lists the dashboard's sections in order.
var Nav = []NavItem{
	{"overview", "Overview", "/"},
	{"setup", "Setup", "/setup"},
	{"settings", "Settings", "/settings"},
	{"diagnostics", "Diagnostics", "/diagnostics"},
	{"rooms", "Rooms", "/rooms"},
	{"exports", "Exports", "/exports"},
	{"projects", "Projects", "/projects"},
	{"users", "Users", "/users"},
	{"transactions", "Transactions", "/transactions"},
	{"outbox", "Outbox", "/outbox"},
	{"platform", "Platform", "/platform"},
	{"reprovision", "Reprovision", "/reprovision"},
}

// htmxConfig goes in <meta name="htmx-config"> because the CSP allows no inline script:
// no injected indicator style (app.css has it), no eval, no script tags from responses;
// error responses are swapped too (handlers retarget them to the flash area); and no
// history snapshots in localStorage, since a page may show a secret once.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,` +
	`"historyCacheSize":0,"refreshOnHistoryMiss":true,` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"[45]..","swap":true,"error":true}]}`
