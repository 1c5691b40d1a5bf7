package apidoc

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/export"
	"matrixas/handlers/api"
	"matrixas/matrix"
	"matrixas/setup"
)

// access is who may call an operation; it decides the security, the 401/403 answers
// and a sentence of the description.
type access int

const (
	anyone      access = iota // no credentials needed
	staffOnly                 // 401 anonymous, 403 non-staff
	staffWrites               // any authenticated caller may read; writes are staff only
	staffHidden               // 401 anonymous, 404 non-staff (as if nothing were there)
	anyUser                   // any authenticated caller, reads and writes (for themselves)
)

// Response bodies that handlers write as maps; these mirror them for the document, and
// the response validation test fails if a handler's map drifts from its mirror.
type (
	// botProvisionResponse is POST provision-bot's answer.
	botProvisionResponse struct {
		BotProvisionStatus string `json:"bot_provision_status"`
	}
	// stateConflict is a 409: the object's state does not allow the action.
	stateConflict struct {
		Detail string `json:"detail"`
		State  string `json:"state"`
	}
	// exportDocument is a history export's JSON file, as a download delivers it
	// (package export writes it as a stream).
	exportDocument struct {
		RoomID       string           `json:"room_id"`
		RoomName     string           `json:"room_name"`
		ExportedAt   string           `json:"exported_at"`
		MessageCount int              `json:"message_count"`
		MediaCount   int              `json:"media_count"`
		Messages     []export.Message `json:"messages"`
	}
)

// Request bodies: the handlers read these as loose fields (JSON or form), so they are
// written out here with the rules the handlers apply.
var (
	uuidPattern = "^[0-9a-f]{32}$"
	// roles are the project roles as answered; roleInputs as accepted (the platform's
	// names, and the short ones the API took before, in any case).
	roles      = []any{db.RoleAdmin, db.RoleManager, db.RoleMember}
	roleInputs = &Schema{Type: "string",
		Description: "PROJECT.ADMIN, PROJECT.MANAGER or PROJECT.MEMBER; admin, manager and member are accepted too (any case). Answers use the platform's names."}
	roomRoles = []any{"", db.RoleAdmin, db.RoleCustomerOwner, db.RoleManager, db.RoleMember}
)

func str(desc string) *Schema { return &Schema{Type: "string", Description: desc} }

func maxLen(n int, s *Schema) *Schema { s.MaxLength = &n; return s }

func object(required []string, props map[string]*Schema) *Schema {
	return &Schema{Type: "object", Properties: props, Required: required}
}

func ref(name string) *Schema { return &Schema{Ref: "#/components/schemas/" + name} }

func requestSchemas() map[string]*Schema {
	user := func(required []string) *Schema {
		return object(required, map[string]*Schema{
			"uuid":      str("The user's UUID in the platform (with or without dashes). Given on create, an existing user with it is updated (200) instead of created (201)."),
			"username":  maxLen(150, &Schema{Type: "string", Description: "Letters, digits and @/./+/-/_ only.", Pattern: `^[\w.@+-]+$`}),
			"email":     &Schema{Type: "string", Description: "An email address, or empty."},
			"full_name": maxLen(150, str("")),
			"is_active": &Schema{Type: "boolean", Description: "Inactive users lose their Matrix room memberships; their roles are kept."},
		})
	}
	project := func(required []string) *Schema {
		return object(required, map[string]*Schema{
			"uuid":        str("The project's UUID in the platform. Given on create, an existing project with it is updated (200) instead of created (201)."),
			"name":        maxLen(500, str("The room is named after the project.")),
			"description": maxLen(5000, str("")),
			"customer":    str("The UUID of the project's customer (its owners are members of the project's room); empty for none. Kept when left out."),
		})
	}
	customer := func(required []string) *Schema {
		return object(required, map[string]*Schema{
			"uuid":         str("The customer's UUID in the platform. Given on create, an existing customer with it is updated (200) instead of created (201)."),
			"name":         maxLen(150, str("")),
			"abbreviation": maxLen(12, str("")),
		})
	}
	uri := func(desc string) *Schema { return &Schema{Type: "string", Format: "uri", Description: desc} }
	return map[string]*Schema{
		"MatrixAppserviceSetupRequest": object(nil, map[string]*Schema{
			"url":                   str("Waldur URL reachable by the Matrix homeserver (for webhook callbacks). Optional: defaults to the stored URL, then PUBLIC_URL; without any, the registration has no url (url: null) and webhook_url is just the path."),
			"sender_localpart":      &Schema{Type: "string", Pattern: `^[a-z0-9._=\-/]+$`, Description: "Localpart for the appservice bot user, e.g. 'waldur-bot'."},
			"homeserver_url":        uri("Matrix homeserver base URL. Only persisted if MATRIX_HOMESERVER_URL is not already configured."),
			"homeserver_public_url": uri("Optional. Matrix homeserver URL used by browser clients. Leave blank when the homeserver URL above is reachable from both servers and browsers. Only persisted if MATRIX_HOMESERVER_PUBLIC_URL is not already configured."),
			"homeserver_domain":     str("Matrix homeserver server_name domain. Only persisted if MATRIX_HOMESERVER_DOMAIN is not already configured."),
			"user_registration_secret": maxLen(1024, &Schema{Type: "string", WriteOnly: true,
				Description: "Shared secret configured in the homeserver for user registration. Only persisted if MATRIX_USER_REGISTRATION_SECRET is not already configured."}),
		}),
		"UserRequest":           user([]string{"username"}),
		"PatchedUserRequest":    user(nil),
		"ProjectRequest":        project([]string{"name"}),
		"PatchedProjectRequest": project(nil),
		"ProjectMemberRequest": object([]string{"user", "role"}, map[string]*Schema{
			"user": str("The user's UUID."),
			"role": roleInputs,
		}),
		"CustomerRequest":        customer([]string{"name"}),
		"PatchedCustomerRequest": customer(nil),
		"CustomerOwnerRequest": object([]string{"user"}, map[string]*Schema{
			"user": str("The user's UUID."),
			"role": str("Optional: CUSTOMER.OWNER (or owner, any case), the one customer role."),
		}),
		"PlatformSyncRequest": object(nil, map[string]*Schema{
			"mode": &Schema{Type: "string", Enum: []any{"full", "incremental"}, Description: "full (the default): list everything and reconcile; incremental: what changed since the last successful run."},
		}),
		"PlatformEventForm": object([]string{"event_type"}, map[string]*Schema{
			"event_type": str("As in PlatformEvent."),
			"created":    str(""),
			"message":    str(""),
			"context":    str("The context as JSON text. (The platform's own form encoding sends only the context's key names: such an event names nothing and makes the sync look for changes instead.)"),
		}),
		"PlatformEvent": object([]string{"event_type"}, map[string]*Schema{
			"event_type": str("e.g. role_granted, role_revoked, project_deletion_succeeded, user_deactivated, marketplace_order_completed."),
			"created":    str("When the event happened (ISO 8601)."),
			"message":    str(""),
			"context": {Type: "object", Description: "The ids the event names: scope_type, scope_uuid, affected_user_uuid, project_uuid, customer_uuid, order_uuid, ... Form-encoded bodies carry it as JSON text.",
				AdditionalProperties: &Schema{}},
		}),
		"LinkMatrixAccountRequest": object(nil, map[string]*Schema{
			"matrix_user_id": str("The existing account to link, @localpart:domain on this homeserver. Default: the ID the user's profile has (the refused one) or would get."),
		}),
		"MatrixRoomRequest": object([]string{"project"}, map[string]*Schema{
			"project": str("UUID of the project the room is for; a project has at most one room."),
		}),
		"MatrixRoomDisableRequest": object(nil, map[string]*Schema{
			"delete_history": &Schema{Type: "boolean",
				Description: "true: delete the room's history exports (files included) instead of exporting its history before it is archived. Default false."},
		}),
		"MatrixRoomMessageRequest": object([]string{"body"}, map[string]*Schema{
			"body": str(fmt.Sprintf("The message, in Markdown (rendered to sanitized HTML when posted); not blank, at most %d bytes.", db.MaxOutboxBody)),
		}),
		"Detail": object([]string{"detail"}, map[string]*Schema{"detail": str("What went wrong, for people.")}),
		"FieldErrors": {Type: "object", Description: "Validation errors: each field that was refused, with its messages.",
			AdditionalProperties: &Schema{Type: "array", Items: &Schema{Type: "string"}}},
	}
}

// responseComponents reflects the response types; adjustments add what the types do not say.
func responseComponents() (map[string]*Schema, error) {
	dt := func(desc string) func(*Schema) {
		return func(s *Schema) { s.Format, s.Description = "date-time", desc }
	}
	desc := func(d string) func(*Schema) { return func(s *Schema) { s.Description = d } }
	uuid := func(d string) func(*Schema) { return func(s *Schema) { s.Pattern, s.Description = uuidPattern, d } }
	enum := func(vals []any, d string) func(*Schema) { return func(s *Schema) { s.Enum, s.Description = vals, d } }
	states := make([]any, len(db.RoomStates))
	for i, s := range db.RoomStates {
		states[i] = string(s)
	}
	var checks []any
	for _, c := range append(diagnostics.CheckNames, diagnostics.PlatformCheckNames...) {
		checks = append(checks, c)
	}
	return reflectComponents([]component{
		{"MatrixAppserviceStatus", api.AppserviceStatus{}},
		{"MatrixAppserviceSetupResponse", setup.Result{}},
		{"MatrixBotProvisionResponse", botProvisionResponse{}},
		{"MatrixAppserviceRegistration", matrix.Registration{}},
		{"MatrixAppserviceNamespaces", matrix.Namespaces{}},
		{"MatrixAppserviceNamespace", matrix.Namespace{}},
		{"MatrixDiagnostics", diagnostics.Report{}},
		{"MatrixDiagnosticsCheck", diagnostics.Check{}},
		{"MatrixReprovisionResponse", db.ReprovisionCounts{}},
		{"MatrixReprovisionProgress", api.ReprovisionProgressJSON{}},
		{"MatrixRoom", api.RoomJSON{}},
		{"MatrixRoomDetail", api.RoomDetailJSON{}},
		{"MatrixRoomMember", api.RoomMemberJSON{}},
		{"MatrixRoomOpen", api.OpenRoomJSON{}},
		{"EligibleProject", api.EligibleProjectJSON{}},
		{"MatrixUserProfile", api.ProfileJSON{}},
		{"MatrixCredentials", api.CredentialsJSON{}},
		{"MatrixSession", api.SessionJSON{}},
		{"MatrixRoomMessage", api.OutboxMessageJSON{}},
		{"User", api.UserJSON{}},
		{"Project", api.ProjectJSON{}},
		{"ProjectMember", api.MemberJSON{}},
		{"Customer", api.CustomerJSON{}},
		{"CustomerOwner", api.OwnerJSON{}},
		{"PlatformSync", api.PlatformSyncJSON{}},
		{"PlatformSyncCounts", api.SyncCountsJSON{}},
		{"PlatformSyncCount", api.SyncCountJSON{}},
		{"PlatformEventAccepted", api.PlatformEventJSON{}},
		{"StateConflict", stateConflict{}},
		{"MatrixHistoryExport", api.ExportJSON{}},
		{"MatrixHistoryExportDocument", exportDocument{}},
		{"MatrixHistoryExportMessage", export.Message{}},
	}, map[string]func(*Schema){
		"MatrixAppserviceStatus":                             desc("The current appservice configuration state."),
		"MatrixAppserviceStatus.enabled":                     desc("Whether the appservice is set up and accepting transactions."),
		"MatrixAppserviceStatus.bot_user_id":                 desc("The bot's Matrix user ID, @<sender_localpart>:<homeserver_domain>; empty until both are known."),
		"MatrixAppserviceStatus.webhook_path":                desc("Path, relative to the appservice URL, at which the homeserver pushes transactions."),
		"MatrixAppserviceStatus.transaction_count":           desc("Transactions received from the homeserver, ever."),
		"MatrixAppserviceSetupResponse":                      desc("Fresh tokens and the registration to install on the homeserver. Shown once: store them now."),
		"MatrixAppserviceSetupResponse.registration_yaml":    desc("The appservice registration file: install it on the homeserver and restart it."),
		"MatrixAppserviceSetupResponse.bot_provision_status": desc("ok (registered, or already there: M_USER_IN_USE, or reserved to this appservice: M_EXCLUSIVE), skipped (no homeserver configured), or failed: <reason>, also when the homeserver cannot be reached (usually failed: M_UNKNOWN_TOKEN until the homeserver loads the new registration; then call provision-bot)."),
		"MatrixAppserviceSetupResponse.webhook_url":          desc("<url>/_matrix/app/v1/transactions/{txnId}; just the path when there is no url."),
		"MatrixAppserviceStatus.homeserver_url":              desc("The public homeserver URL when one is set, else the internal one."),
		"MatrixBotProvisionResponse.bot_provision_status":    desc("ok, or failed: <reason>."),
		"MatrixAppserviceRegistration":                       desc("An appservice registration file, as YAML."),
		"MatrixDiagnostics.ok":                               desc("True when every check is."),
		"MatrixDiagnosticsCheck.name":                        enum(checks, "The check, in report order."),
		"MatrixDiagnosticsCheck.detail":                      desc("What the check found; never a token or the registration secret."),
		"MatrixDiagnosticsCheck.hint":                        desc("The next step to take; present on failing checks only."),
		"MatrixReprovisionResponse.rooms_reprovisioned":      desc("Active rooms reset to creating, to be re-created on the new homeserver."),
		"MatrixReprovisionResponse.users_reset":              desc("Provisioned user profiles reset, to be registered again."),
		"MatrixReprovisionProgress.started_at":               dt("When the last reprovision started; null when there never was one."),
		"MatrixRoom.uuid":                                    uuid("The room's UUID in this server."),
		"MatrixRoom.project":                                 uuid("The project's UUID."),
		"MatrixRoom.room_id":                                 desc("The Matrix room ID; empty until created."),
		"MatrixRoom.room_alias":                              desc("#waldur-<project uuid>:<domain>; empty when the alias could not be claimed."),
		"MatrixRoom.state":                                   enum(states, "creating -> active -> disabling -> archived; error after repeated failures (retry moves it back to creating)."),
		"MatrixRoom.error_message":                           desc("Why the last attempt failed; empty when it did not."),
		"MatrixRoom.next_attempt_at":                         dt("When the worker next works on the room; null when nothing is due."),
		"MatrixRoom.created":                                 dt(""),
		"MatrixRoom.modified":                                dt(""),
		"MatrixRoomMember.user":                              uuid("The user's UUID."),
		"MatrixRoomMember.role":                              enum(roomRoles, "The role that puts the user in the room: a project role, or CUSTOMER.OWNER for an owner of the project's customer; empty for a former member about to be removed, or for staff who joined without one."),
		"MatrixRoomMember.full_name":                         desc("The user's full name; their Matrix display name is this, else the username."),
		"MatrixRoomMember.staff_joined":                      desc("A staff member who joined through the join action: power level 50 whatever their role."),
		"MatrixRoomOpen.room_id":                             desc("The Matrix room ID, for the caller's Matrix client."),
		"EligibleProject.uuid":                               uuid("The project's UUID."),
		"MatrixRoomMember.membership":                        enum([]any{"join", "invite", "leave", "ban", "pending"}, "The membership on the homeserver; pending = not synced yet."),
		"MatrixRoomMember.synced_at":                         dt(""),
		"MatrixUserProfile.user":                             uuid("The user's UUID."),
		"MatrixUserProfile.provisioned_at":                   dt(""),
		"MatrixUserProfile.last_synced_at":                   dt(""),
		"MatrixUserProfile.registration": enum([]any{string(db.RegistrationNone), string(db.RegistrationSent), string(db.RegistrationCreated),
			string(db.RegistrationLinked), string(db.RegistrationRefused)},
			"Who made the account: empty (not asked for yet), sent (asked, no answer yet), created (by this server), linked (an existing account, linked on purpose), refused (it existed before this server asked, so it is not used; last_error says how to link it)."),
		"MatrixUserProfile.signed_out":            desc("The user is deactivated and every device of theirs was signed out on the homeserver."),
		"MatrixUserProfile.locked":                desc("The account is locked on the homeserver (only where the homeserver offers the bot an admin API: Synapse with the bot a server admin)."),
		"MatrixCredentials.method":                enum([]any{"none", "password", "oidc"}, "How the user signs in from a Matrix client of their own (MATRIX_EXTERNAL_LOGIN_METHOD)."),
		"MatrixCredentials.homeserver_url":        desc("The homeserver URL for clients: the public one when set."),
		"MatrixCredentials.matrix_user_id":        desc("The caller's Matrix user ID."),
		"MatrixSession.access_token":              desc("The new session's access token: keep it secret; it is shown once and stored nowhere here."),
		"MatrixSession.device_id":                 desc("The new device the session is."),
		"MatrixSession.homeserver_url":            desc("The homeserver URL for clients: the public one when set."),
		"User.uuid":                               uuid(""),
		"User.created":                            dt(""),
		"User.modified":                           dt(""),
		"Project.uuid":                            uuid(""),
		"Project.room":                            desc("The UUID of the project's Matrix room; null when it has none."),
		"Project.room_state":                      enum(append(states, nil), "The room's state; null when the project has no room."),
		"Project.deleting":                        desc("The project was deleted while its room was live: it goes, with its room, once the room is disabled and archived."),
		"Project.created":                         dt(""),
		"Project.modified":                        dt(""),
		"ProjectMember.user":                      uuid("The user's UUID."),
		"ProjectMember.role":                      enum(roles, "The platform's role name."),
		"ProjectMember.created":                   dt(""),
		"StateConflict.state":                     desc("The object's current state."),
		"MatrixHistoryExport":                     desc("One export of a room's history: its record, and its files once completed."),
		"MatrixHistoryExport.uuid":                uuid("The export's UUID."),
		"MatrixHistoryExport.room":                desc("The UUID of the exported room's record; null once that record is deleted (the export outlives it)."),
		"MatrixHistoryExport.room_id":             desc("The Matrix room exported."),
		"MatrixHistoryExport.room_name":           desc("The room's name when it was exported."),
		"MatrixHistoryExport.export_type":         enum(exportTypes(), "manual (staff asked), periodic (the daily export) or on_deletion (before the room was archived)."),
		"MatrixHistoryExport.state":               enum(exportStates(), "pending -> exporting -> completed or failed."),
		"MatrixHistoryExport.message_count":       desc("Messages exported; while exporting, the count so far."),
		"MatrixHistoryExport.media_count":         desc("Attachments archived in the media ZIP."),
		"MatrixHistoryExport.error_message":       desc("Why the export failed; empty otherwise."),
		"MatrixHistoryExport.export_file":         desc("URL that downloads the JSON document; null until completed."),
		"MatrixHistoryExport.export_file_size":    desc("Bytes the JSON download delivers."),
		"MatrixHistoryExport.media_file":          desc("URL that downloads the media ZIP; null when there is none (media export off, or no attachment)."),
		"MatrixHistoryExport.media_file_size":     desc("Bytes the ZIP download delivers."),
		"MatrixHistoryExport.attempts":            desc("Runs started: more than one when a stop interrupted it."),
		"MatrixHistoryExport.started_at":          dt("When the last run started; null before."),
		"MatrixHistoryExport.completed_at":        dt("When it completed or failed; null before."),
		"MatrixHistoryExport.created":             dt("When it was queued."),
		"MatrixHistoryExportDocument":             desc("A room's history: every message, newest first."),
		"MatrixHistoryExportDocument.exported_at": dt("When the export ran (UTC, milliseconds)."),
		"MatrixHistoryExportMessage":              desc("One message: m.room.message events (edits included, each its own entry), stickers, undecryptable and redacted messages."),
		"MatrixHistoryExportMessage.timestamp":    dt("The homeserver's time of the event (UTC, milliseconds)."),
		"MatrixHistoryExportMessage.relates_to":   desc("m.relates_to: a reply's m.in_reply_to, an edit's rel_type m.replace and event_id."),
		"MatrixHistoryExportMessage.media_file":   desc("The attachment's entry in the media ZIP: {event_id}_{file name}."),
		"MatrixHistoryExportMessage.media_error":  desc("Why the attachment is not in the ZIP (over a limit, download failed)."),
		"MatrixRoomMessage":                       desc("A message of the bot's outbox."),
		"MatrixRoomMessage.uuid":                  uuid("The message's UUID in this server."),
		"MatrixRoomMessage.kind":                  enum([]any{"notification", "reply"}, "notification (including those sent through this API) or reply (to a command)."),
		"MatrixRoomMessage.state":                 enum([]any{"pending", "sent", "failed"}, "pending until posted (sent) or given up after the retries (failed)."),
		"MatrixRoomMessage.room":                  uuid("The room's UUID."),
		"MatrixRoomMessage.room_id":               desc("The Matrix room it is posted into."),
		"MatrixRoomMessage.body":                  desc("The message's Markdown."),
		"MatrixRoomMessage.attempts":              desc("Sends begun in the current round of retries."),
		"MatrixRoomMessage.next_attempt_at":       dt("When the next send is due; null once sent or failed."),
		"MatrixRoomMessage.last_error":            desc("Why the last send failed; empty when none did."),
		"MatrixRoomMessage.event_id":              desc("The posted event; empty until sent."),
		"MatrixRoomMessage.created":               dt("When it was queued."),
		"MatrixRoomMessage.sent_at":               dt(""),
		"MatrixRoomMessage.failed_at":             dt(""),
		"User.source":                             enum([]any{"api", "waldur"}, "api: pushed through this API; waldur: mirrored by the platform sync, which owns it (writes here are 409)."),
		"Project.source":                          enum([]any{"api", "waldur"}, "api: pushed through this API; waldur: mirrored by the platform sync, which owns it (writes here are 409)."),
		"Project.customer":                        desc("The UUID of the project's customer, whose owners are members of its room; null when none."),
		"Customer.uuid":                           uuid(""),
		"Customer.source":                         enum([]any{"api", "waldur"}, "api: pushed through this API; waldur: mirrored by the platform sync, which owns it (writes here are 409)."),
		"Customer.created":                        dt(""),
		"Customer.modified":                       dt(""),
		"CustomerOwner.user":                      uuid("The user's UUID."),
		"CustomerOwner.role":                      enum([]any{db.RoleCustomerOwner}, ""),
		"CustomerOwner.created":                   dt(""),
		"PlatformSync.configured":                 desc("False without WALDUR_URL: every other field is then empty."),
		"PlatformSync.running":                    desc("A run (full or incremental) is under way."),
		"PlatformSync.running_kind":               enum([]any{"full", "incremental", nil}, "The kind of the run under way; null when none is."),
		"PlatformSync.last_started_at":            dt("When the newest run started (the running one, if any)."),
		"PlatformSync.last_finished_at":           dt("When the newest finished run ended; null before the first."),
		"PlatformSync.last_ok":                    desc("Whether the newest finished run succeeded. A failed run changes nothing."),
		"PlatformSync.last_error":                 desc("Why the newest finished run failed, in words (\"token rejected: ...\" for a 401); null when it did not."),
		"PlatformSync.events_received":            desc("Events the receiver accepted, ever."),
		"PlatformSync.last_event_at":              dt("When the last event arrived; null when none did."),
		"PlatformSync.last_kind":                  enum([]any{"full", "incremental", nil}, "The newest finished run's kind."),
		"PlatformSync.last_full_ok_at":            dt("When the newest successful full reconcile started."),
		"PlatformSync.token_fingerprint":          desc("sha256:<first 12 hex digits> of the token; never the token."),
	})
}

// Shared error answers, each a components.responses entry.
var errorResponses = map[int]struct{ name, desc, schema string }{
	http.StatusBadRequest:            {"BadRequest", "Invalid input: {\"detail\": \"...\"}, or {\"field\": [\"message\", ...]} naming each refused field.", ""},
	http.StatusUnauthorized:          {"Unauthorized", "No valid credentials: send Authorization: Token <key>, or the session cookie.", "Detail"},
	http.StatusForbidden:             {"Forbidden", "Authenticated, but not allowed (staff only; a staff account through the directory API), or a cross-site request with a session cookie.", "Detail"},
	http.StatusNotFound:              {"NotFound", "No such object, or a page number past the last page (\"Invalid page.\").", "Detail"},
	http.StatusConflict:              {"Conflict", "The object's state does not allow this (the body says which state it is in), the object is owned by the platform sync (change it on the platform), or a sync is already running.", ""},
	http.StatusRequestEntityTooLarge: {"PayloadTooLarge", "The request body is larger than MAX_BODY_BYTES.", "Detail"},
	http.StatusUnsupportedMediaType:  {"UnsupportedMediaType", "The body is in a media type the API does not read: send application/json or application/x-www-form-urlencoded.", "Detail"},
	http.StatusTooManyRequests:       {"TooManyRequests", "Too many requests (sessions per hour; 10 manual exports of a room in 24 hours): the detail says which; Retry-After says when to try again.", "Detail"},
	http.StatusServiceUnavailable:    {"ServiceUnavailable", "The homeserver could not do it now; the detail says why.", "Detail"},
}

func errorResponseComponents() map[string]*Response {
	out := map[string]*Response{}
	for code, e := range errorResponses {
		var schema *Schema
		switch {
		case code == http.StatusConflict: // a state conflict also has a detail
			schema = &Schema{AnyOf: []*Schema{ref("StateConflict"), ref("Detail")}}
		case e.schema == "": // 400: either shape
			schema = &Schema{OneOf: []*Schema{ref("Detail"), ref("FieldErrors")}}
		default:
			schema = ref(e.schema)
		}
		r := &Response{Description: e.desc, Content: map[string]MediaType{"application/json": {Schema: schema}}}
		switch code {
		case http.StatusUnauthorized:
			r.Headers = map[string]*Header{"WWW-Authenticate": {Required: true, Schema: str(""), Description: `Token realm="api"`}}
		case http.StatusTooManyRequests:
			r.Headers = map[string]*Header{"Retry-After": {Required: true, Schema: &Schema{Type: "integer"}, Description: "Seconds to wait."}}
		}
		out[e.name] = r
	}
	return out
}

// spec is one operation as written below; Build turns it into an Operation.
type spec struct {
	method, path, id, tag, summary, desc string
	access                               access
	params                               []*Parameter
	body                                 *RequestBody
	ok                                   map[int]*Response // the success answers, and answers of the operation's own shape
	errors                               []int             // error statuses beyond the ones access and body imply
}

// Parameters used by several operations.
var (
	pageParams = []*Parameter{
		{Name: "page", In: "query", Schema: str(""), Description: "A page number from 1, or \"last\". A page past the last one is 404 \"Invalid page.\""},
		{Name: "page_size", In: "query", Schema: &Schema{Type: "integer", Minimum: ptr(1.0), Maximum: ptr(float64(db.MaxPageSize))},
			Description: fmt.Sprintf("Items per page (default %d, at most %d).", db.DefaultPageSize, db.MaxPageSize)},
	}
	searchParam = &Parameter{Name: "search", In: "query", Schema: str(""), Description: "Case-insensitive text search."}
)

func ptr[T any](v T) *T { return &v }

func pathParam(name, desc string) *Parameter {
	return &Parameter{Name: name, In: "path", Required: true, Schema: str(""), Description: desc}
}

func query(name string, s *Schema, desc string) *Parameter {
	return &Parameter{Name: name, In: "query", Schema: s, Description: desc}
}

// fieldsBody is a body the handlers read as JSON or a url-encoded form (handlers'
// readFields). DRF also parses multipart/form-data; this API has no file fields and
// answers it 415, so it is not listed.
func fieldsBody(schema string, required bool) *RequestBody {
	s := ref(schema)
	return &RequestBody{Required: required, Content: map[string]MediaType{
		"application/json":                  {Schema: s},
		"application/x-www-form-urlencoded": {Schema: s},
	}}
}

func jsonBody(s *Schema) *RequestBody {
	return &RequestBody{Required: true, Content: map[string]MediaType{"application/json": {Schema: s}}}
}

func jsonResp(desc string, s *Schema) *Response {
	return &Response{Description: desc, Content: map[string]MediaType{"application/json": {Schema: s}}}
}

// listResp is a page of a list: a bare JSON array with the total and links in headers.
func listResp(item string) *Response {
	r := jsonResp("One page of the list.", &Schema{Type: "array", Items: ref(item)})
	r.Headers = map[string]*Header{
		"X-Result-Count": {Required: true, Schema: &Schema{Type: "integer"}, Description: "Items in the whole list, over all pages."},
		"Link":           {Schema: str(""), Description: `Links to the neighbouring pages: <url>; rel="next", <url>; rel="prev".`},
	}
	return r
}

// staffAccountNote is said of every directory write that names a user.
const staffAccountNote = "A staff account (this server's operator) is 403: staff accounts are managed on the dashboard's Account page or with 'matrixas createstaff', not through this API. A user the platform sync owns (source waldur) is 409: change it on the platform."

// specs lists every operation of the JSON API, in the order web.Routes lists the routes.
func specs() []spec {
	uuidParam := pathParam("uuid", "The object's UUID (32 hex digits, dashes allowed).")
	noContent := map[int]*Response{http.StatusNoContent: {Description: "Done; no body."}}
	const admin, users, projects, rooms, profiles, matrixTag, schema = "admin", "users", "projects", "matrix-rooms", "matrix-user-profiles", "matrix", "schema"
	const exportsTag = "matrix-exports"
	const customers, platform = "customers", "platform"
	ownedNote := " Rows the platform sync owns (source waldur) are 409: change them on the platform."
	ownersList := &Schema{Type: "array", Items: ref("CustomerOwner")}
	return []spec{
		{method: http.MethodGet, path: "/api/admin/matrix-appservice/status/", id: "admin_matrix_appservice_status_retrieve", tag: admin, access: staffOnly,
			summary: "Get Matrix appservice status", desc: "Returns the current appservice configuration state.",
			ok: map[int]*Response{200: jsonResp("", ref("MatrixAppserviceStatus"))}},
		{method: http.MethodPost, path: "/api/admin/matrix-appservice/setup/", id: "admin_matrix_appservice_setup", tag: admin, access: staffOnly,
			summary: "Setup Matrix appservice registration",
			desc:    "Generates fresh appservice tokens (rotating any existing ones), enables the appservice, and returns registration YAML. The homeserver must then load the new registration (restart it) before the bot can be provisioned.",
			body:    fieldsBody("MatrixAppserviceSetupRequest", false),
			ok:      map[int]*Response{200: jsonResp("The tokens and registration, shown once (Cache-Control: no-store).", ref("MatrixAppserviceSetupResponse"))},
			errors:  []int{400}},
		{method: http.MethodPost, path: "/api/admin/matrix-appservice/provision-bot/", id: "admin_matrix_appservice_provision_bot", tag: admin, access: staffOnly,
			summary: "Provision the appservice bot",
			desc:    "Retries only the bot step of setup: for after the homeserver admin installed the registration and restarted the homeserver.",
			ok:      map[int]*Response{200: jsonResp("", ref("MatrixBotProvisionResponse"))},
			errors:  []int{400}},
		{method: http.MethodGet, path: "/api/admin/matrix-appservice/registration.yaml", id: "admin_matrix_appservice_registration_retrieve", tag: admin, access: staffOnly,
			summary: "Download the appservice registration",
			desc:    "The current registration file, for the homeserver (it holds both tokens). 404 until setup ran.",
			ok: map[int]*Response{200: {Description: "The registration file, as an attachment.",
				Content: map[string]MediaType{"application/yaml": {Schema: ref("MatrixAppserviceRegistration")}}}},
			errors: []int{404}},
		{method: http.MethodGet, path: "/api/admin/matrix/diagnostics/", id: "admin_matrix_diagnostics_retrieve", tag: admin, access: staffOnly,
			summary: "Run Matrix connectivity diagnostics",
			desc:    "Performs live connectivity checks against the configured Matrix homeserver and returns results for each check. A failing check is still a 200.",
			ok:      map[int]*Response{200: jsonResp("", ref("MatrixDiagnostics"))}},
		{method: http.MethodGet, path: "/api/admin/matrix/reprovision/", id: "admin_matrix_reprovision_retrieve", tag: admin, access: staffOnly,
			summary: "Reprovision progress", desc: "The last reprovision and how far the worker got with it.",
			ok: map[int]*Response{200: jsonResp("", ref("MatrixReprovisionProgress"))}},
		{method: http.MethodPost, path: "/api/admin/matrix/reprovision/", id: "admin_matrix_reprovision", tag: admin, access: staffOnly,
			summary: "Reprovision all active Matrix rooms on a new homeserver",
			desc:    "Resets all active rooms to 'creating' state and re-queues them for provisioning. Also resets all user profiles. Do not reprovision onto the same homeserver (the old rooms remain); the new homeserver needs the same server_name. 400 when Matrix chat is disabled.",
			params:  []*Parameter{query("dry_run", &Schema{Type: "boolean"}, "true: answer the counts with 200 and change nothing.")},
			ok: map[int]*Response{
				202: jsonResp("Started.", ref("MatrixReprovisionResponse")),
				200: jsonResp("Dry run: what would be reset.", ref("MatrixReprovisionResponse")),
				400: jsonResp(`Matrix chat is disabled: ["Matrix chat is disabled."] (the reference's answer, a list); or a bad dry_run: {"dry_run": ["..."]}.`,
					&Schema{OneOf: []*Schema{{Type: "array", Items: &Schema{Type: "string"}}, ref("FieldErrors")}}),
			}},
		{method: http.MethodGet, path: "/api/admin/platform-sync/", id: "admin_platform_sync_retrieve", tag: platform, access: staffOnly,
			summary: "Platform sync status",
			desc:    "The platform sync's state: whether a platform (WALDUR_URL) is configured, whether a run is under way, the newest run's outcome and counts, and the events received.",
			ok:      map[int]*Response{200: jsonResp("", ref("PlatformSync"))}},
		{method: http.MethodPost, path: "/api/admin/platform-sync/", id: "admin_platform_sync", tag: platform, access: staffOnly,
			summary: "Start a platform sync now",
			desc:    "Starts a full reconcile now (or an incremental run with {\"mode\": \"incremental\"}) and answers 202 with the status. 409 while a run is under way; 400 when no platform is configured.",
			body:    fieldsBody("PlatformSyncRequest", false),
			ok:      map[int]*Response{202: jsonResp("Started.", ref("PlatformSync"))},
			errors:  []int{400, 409}},

		{method: http.MethodGet, path: "/api/users/", id: "users_list", tag: users, access: staffWrites, summary: "List platform users",
			desc:   "Staff accounts (this server's operators) are listed to staff callers only.",
			params: append([]*Parameter{searchParam, query("is_active", &Schema{Type: "boolean"}, "")}, pageParams...),
			ok:     map[int]*Response{200: listResp("User")}, errors: []int{400, 404}},
		{method: http.MethodPost, path: "/api/users/", id: "users_create", tag: users, access: staffWrites, summary: "Create or update a platform user",
			desc: "Upserts by the optional uuid, so a directory sync can replay it: 201 when created, 200 when updated. A uuid that names a staff account is 403: staff accounts are managed on the dashboard's Account page or with 'matrixas createstaff'.",
			body: fieldsBody("UserRequest", true),
			ok:   map[int]*Response{201: jsonResp("Created.", ref("User")), 200: jsonResp("Updated.", ref("User"))}, errors: []int{400, 409}},
		{method: http.MethodGet, path: "/api/users/{uuid}/", id: "users_retrieve", tag: users, access: staffWrites, summary: "Get a platform user",
			desc:   "A staff account is 404 to callers who are not staff.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("User"))}, errors: []int{404}},
		{method: http.MethodPut, path: "/api/users/{uuid}/", id: "users_update", tag: users, access: staffWrites, summary: "Update a platform user",
			desc:   staffAccountNote,
			params: []*Parameter{uuidParam}, body: fieldsBody("UserRequest", true),
			ok: map[int]*Response{200: jsonResp("", ref("User"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPatch, path: "/api/users/{uuid}/", id: "users_partial_update", tag: users, access: staffWrites, summary: "Change some fields of a platform user",
			desc:   staffAccountNote,
			params: []*Parameter{uuidParam}, body: fieldsBody("PatchedUserRequest", false),
			ok: map[int]*Response{200: jsonResp("", ref("User"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPost, path: "/api/users/{uuid}/deactivate/", id: "users_deactivate", tag: users, access: staffWrites, summary: "Deactivate a platform user",
			desc:   "The user loses access and leaves every project room; roles are kept for a reactivation. " + staffAccountNote,
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("User"))}, errors: []int{404, 409}},
		{method: http.MethodPost, path: "/api/users/{uuid}/link_matrix_account/", id: "users_link_matrix_account", tag: users, access: staffWrites,
			summary: "Link an existing Matrix account to a user",
			desc: "What 'matrixas link-matrix-account USERNAME @id:domain' does: an account that existed on the homeserver before this server asked for it is refused (no silent takeover) until linked on purpose. " +
				"Refused (400): another domain, the bot's own account, a homeserver admin account (when the homeserver lets the bot tell: Synapse with the bot a server admin). " +
				"409: the ID is linked to another user, or the user's own account works and would be replaced. 503: the homeserver did not answer whether it is an admin account. " +
				"The worker then provisions the account (display name) and syncs the user's rooms. Staff accounts (which join rooms) may be linked too.",
			params: []*Parameter{uuidParam}, body: fieldsBody("LinkMatrixAccountRequest", false),
			ok: map[int]*Response{
				200: jsonResp("Linked (or already linked): the profile.", ref("MatrixUserProfile")),
				409: jsonResp("Linked to another user, or the user's own account works.", ref("Detail")),
			},
			errors: []int{400, 404, 503}},

		{method: http.MethodGet, path: "/api/projects/", id: "projects_list", tag: projects, access: staffWrites, summary: "List projects",
			params: append([]*Parameter{searchParam}, pageParams...), ok: map[int]*Response{200: listResp("Project")}, errors: []int{404}},
		{method: http.MethodPost, path: "/api/projects/", id: "projects_create", tag: projects, access: staffWrites, summary: "Create or update a project",
			desc: "Upserts by the optional uuid: 201 created, 200 updated. With AUTO_CREATE_ROOMS a new project's room is queued at once." + ownedNote,
			body: fieldsBody("ProjectRequest", true),
			ok:   map[int]*Response{201: jsonResp("Created.", ref("Project")), 200: jsonResp("Updated.", ref("Project"))}, errors: []int{400, 409}},
		{method: http.MethodGet, path: "/api/projects/{uuid}/", id: "projects_retrieve", tag: projects, access: staffWrites, summary: "Get a project",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("Project"))}, errors: []int{404}},
		{method: http.MethodPut, path: "/api/projects/{uuid}/", id: "projects_update", tag: projects, access: staffWrites, summary: "Update a project",
			params: []*Parameter{uuidParam}, body: fieldsBody("ProjectRequest", true),
			ok: map[int]*Response{200: jsonResp("", ref("Project"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPatch, path: "/api/projects/{uuid}/", id: "projects_partial_update", tag: projects, access: staffWrites, summary: "Change some fields of a project",
			params: []*Parameter{uuidParam}, body: fieldsBody("PatchedProjectRequest", false),
			ok: map[int]*Response{200: jsonResp("", ref("Project"))}, errors: []int{400, 404, 409}},
		{method: http.MethodDelete, path: "/api/projects/{uuid}/", id: "projects_destroy", tag: projects, access: staffWrites, summary: "Delete a project",
			desc: "A project whose room has nothing on the homeserver to close (no room, archived, never created) is deleted with it: 204. " +
				"One whose room is live takes the disable path first (\"Chat room was deactivated due to project termination\" is posted, everyone removed, " +
				"the history exported when exports are on) and is deleted with the room once it is archived: 202 with the project, deleting true, until then. " +
				"The room's history exports stay.",
			params: []*Parameter{uuidParam},
			ok: map[int]*Response{
				http.StatusNoContent: {Description: "Deleted."},
				http.StatusAccepted:  jsonResp("Its room is being disabled; the project goes once it is archived.", ref("Project")),
			},
			errors: []int{404}},
		{method: http.MethodGet, path: "/api/projects/{uuid}/members/", id: "projects_members_list", tag: projects, access: staffWrites, summary: "List a project's members",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", &Schema{Type: "array", Items: ref("ProjectMember")})}, errors: []int{404}},
		{method: http.MethodPut, path: "/api/projects/{uuid}/members/", id: "projects_members_update", tag: projects, access: staffWrites, summary: "Replace a project's members",
			desc:   "Replaces the whole member list in one transaction; users left out lose their role and are removed from the room. Answers the new list.",
			params: []*Parameter{uuidParam}, body: jsonBody(&Schema{Type: "array", Items: ref("ProjectMemberRequest")}),
			ok: map[int]*Response{200: jsonResp("", &Schema{Type: "array", Items: ref("ProjectMember")})}, errors: []int{400, 404, 409}},
		{method: http.MethodPost, path: "/api/projects/{uuid}/members/", id: "projects_members_create", tag: projects, access: staffWrites, summary: "Add a member or change their role",
			params: []*Parameter{uuidParam}, body: jsonBody(ref("ProjectMemberRequest")),
			ok: map[int]*Response{
				201: jsonResp("Added; the member list.", &Schema{Type: "array", Items: ref("ProjectMember")}),
				200: jsonResp("Role changed; the member list.", &Schema{Type: "array", Items: ref("ProjectMember")}),
			}, errors: []int{400, 404, 409}},
		{method: http.MethodDelete, path: "/api/projects/{uuid}/members/{user}/", id: "projects_members_destroy", tag: projects, access: staffWrites, summary: "Remove a member",
			desc:   "The user loses their role and is kicked from the room with \"Role removed\". 404 when they had none." + ownedNote,
			params: []*Parameter{uuidParam, pathParam("user", "The user's UUID.")}, ok: noContent, errors: []int{404, 409}},

		{method: http.MethodGet, path: "/api/customers/", id: "customers_list", tag: customers, access: staffWrites, summary: "List customers",
			params: append([]*Parameter{searchParam}, pageParams...), ok: map[int]*Response{200: listResp("Customer")}, errors: []int{404}},
		{method: http.MethodPost, path: "/api/customers/", id: "customers_create", tag: customers, access: staffWrites, summary: "Create or update a customer",
			desc: "Upserts by the optional uuid: 201 created, 200 updated (for platforms without a connector)." + ownedNote,
			body: fieldsBody("CustomerRequest", true),
			ok:   map[int]*Response{201: jsonResp("Created.", ref("Customer")), 200: jsonResp("Updated.", ref("Customer"))}, errors: []int{400, 409}},
		{method: http.MethodGet, path: "/api/customers/{uuid}/", id: "customers_retrieve", tag: customers, access: staffWrites, summary: "Get a customer",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("Customer"))}, errors: []int{404}},
		{method: http.MethodPut, path: "/api/customers/{uuid}/", id: "customers_update", tag: customers, access: staffWrites, summary: "Update a customer",
			desc: strings.TrimSpace(ownedNote), params: []*Parameter{uuidParam}, body: fieldsBody("CustomerRequest", true),
			ok: map[int]*Response{200: jsonResp("", ref("Customer"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPatch, path: "/api/customers/{uuid}/", id: "customers_partial_update", tag: customers, access: staffWrites, summary: "Change some fields of a customer",
			desc: strings.TrimSpace(ownedNote), params: []*Parameter{uuidParam}, body: fieldsBody("PatchedCustomerRequest", false),
			ok: map[int]*Response{200: jsonResp("", ref("Customer"))}, errors: []int{400, 404, 409}},
		{method: http.MethodDelete, path: "/api/customers/{uuid}/", id: "customers_destroy", tag: customers, access: staffWrites, summary: "Delete a customer",
			desc:   "Its owners leave the rooms of its projects; the projects stay, without a customer." + ownedNote,
			params: []*Parameter{uuidParam}, ok: noContent, errors: []int{404, 409}},
		{method: http.MethodGet, path: "/api/customers/{uuid}/owners/", id: "customers_owners_list", tag: customers, access: staffWrites, summary: "List a customer's owners",
			desc:   "The owners (CUSTOMER.OWNER) are members, at power level 50, of every room of the customer's projects.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ownersList)}, errors: []int{404}},
		{method: http.MethodPut, path: "/api/customers/{uuid}/owners/", id: "customers_owners_update", tag: customers, access: staffWrites, summary: "Replace a customer's owners",
			desc:   "Replaces the owners in one transaction; users left out leave the rooms of the customer's projects. Answers the new list." + ownedNote,
			params: []*Parameter{uuidParam}, body: jsonBody(&Schema{Type: "array", Items: ref("CustomerOwnerRequest")}),
			ok: map[int]*Response{200: jsonResp("", ownersList)}, errors: []int{400, 404, 409}},
		{method: http.MethodPost, path: "/api/customers/{uuid}/owners/", id: "customers_owners_create", tag: customers, access: staffWrites, summary: "Add an owner",
			desc: strings.TrimSpace(ownedNote), params: []*Parameter{uuidParam}, body: jsonBody(ref("CustomerOwnerRequest")),
			ok: map[int]*Response{
				201: jsonResp("Added; the owners.", ownersList),
				200: jsonResp("Already an owner; the owners.", ownersList),
			}, errors: []int{400, 404, 409}},
		{method: http.MethodDelete, path: "/api/customers/{uuid}/owners/{user}/", id: "customers_owners_destroy", tag: customers, access: staffWrites, summary: "Remove an owner",
			desc:   "The user leaves the rooms of the customer's projects (unless a project role keeps them there). 404 when they were no owner." + ownedNote,
			params: []*Parameter{uuidParam, pathParam("user", "The user's UUID.")}, ok: noContent, errors: []int{404, 409}},

		{method: http.MethodGet, path: "/api/matrix-rooms/", id: "matrix_rooms_list", tag: rooms, access: staffWrites, summary: "List managed Matrix rooms",
			params: append([]*Parameter{
				query("state", &Schema{Type: "string", Enum: roomStates()}, ""),
				query("project", str(""), "A project UUID."),
				searchParam,
				query("member", &Schema{Type: "boolean"}, "true: only the rooms the caller is in or invited to."),
			}, pageParams...),
			ok: map[int]*Response{200: listResp("MatrixRoom")}, errors: []int{400, 404}},
		{method: http.MethodPost, path: "/api/matrix-rooms/", id: "matrix_rooms_create", tag: rooms, access: staffWrites, summary: "Queue a project's room",
			desc: "The room is created by the worker: it starts in state creating.",
			body: fieldsBody("MatrixRoomRequest", true), ok: map[int]*Response{201: jsonResp("", ref("MatrixRoom"))}, errors: []int{400}},
		{method: http.MethodGet, path: "/api/matrix-rooms/eligible_projects/", id: "matrix_rooms_eligible_projects_list", tag: rooms, access: staffWrites,
			summary: "List projects the caller can create a Matrix room for",
			desc:    "Projects without a room (and not being deleted). Rooms are created by staff, so the list is empty for anyone else.",
			params:  pageParams, ok: map[int]*Response{200: listResp("EligibleProject")}, errors: []int{404}},
		{method: http.MethodGet, path: "/api/matrix-rooms/{uuid}/", id: "matrix_rooms_retrieve", tag: rooms, access: staffWrites, summary: "Get a room with its members",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("MatrixRoomDetail"))}, errors: []int{404}},
		{method: http.MethodDelete, path: "/api/matrix-rooms/{uuid}/", id: "matrix_rooms_destroy", tag: rooms, access: staffWrites, summary: "Delete a room's record",
			desc:   "Only in state error, creating or archived (else 409). The Matrix room itself is left as it is; the room's history exports stay. A room whose project is being deleted takes the project along.",
			params: []*Parameter{uuidParam}, ok: noContent, errors: []int{404, 409}},
		{method: http.MethodGet, path: "/api/matrix-rooms/{uuid}/members/", id: "matrix_rooms_members_list", tag: rooms, access: staffWrites, summary: "List room members",
			params: append([]*Parameter{uuidParam}, pageParams...), ok: map[int]*Response{200: listResp("MatrixRoomMember")}, errors: []int{404}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/sync_members/", id: "matrix_rooms_sync_members", tag: rooms, access: staffWrites,
			summary: "Force sync room membership with project members",
			desc:    "In state active or creating (else 409).",
			params:  []*Parameter{uuidParam}, ok: map[int]*Response{202: {Description: "Queued; no body."}}, errors: []int{404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/retry/", id: "matrix_rooms_retry", tag: rooms, access: staffWrites, summary: "Retry a stuck or failed room operation",
			desc:   "From error the room goes back to creating (its error cleared); a room in creating or disabling is worked on again at once. Other states: 409.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{202: jsonResp("", ref("MatrixRoom"))}, errors: []int{404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/disable/", id: "matrix_rooms_disable", tag: rooms, access: staffWrites, summary: "Disable an active chat room",
			desc: "active or error -> disabling (else 409): \"Chat room was deactivated\" is posted, every member removed once it is sent, the history exported " +
				"(when exports are on; or, with delete_history, the room's exports deleted), then the room is archived. The Matrix room stays, for a reactivation.",
			params: []*Parameter{uuidParam}, body: fieldsBody("MatrixRoomDisableRequest", false),
			ok: map[int]*Response{202: jsonResp("", ref("MatrixRoom"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/reactivate/", id: "matrix_rooms_reactivate", tag: rooms, access: staffWrites, summary: "Re-enable an archived chat room",
			desc:   "archived -> active in the same Matrix room (else 409): the members are invited back, their power levels restored, and \"Chat room was reactivated\" posted.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{202: jsonResp("", ref("MatrixRoom"))}, errors: []int{404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/join/", id: "matrix_rooms_join", tag: rooms, access: staffWrites, summary: "Join a chat room as staff",
			desc: "Staff self-join, in an active room (else 409): the caller gets a Matrix account (provisioned like a member's), is invited and joined " +
				"with power level 50, and \"NAME joined the room.\" is posted. Joining again changes nothing. 400 when the homeserver domain is not configured.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{202: jsonResp("", ref("MatrixRoom"))}, errors: []int{400, 404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/leave/", id: "matrix_rooms_leave", tag: rooms, access: staffWrites, summary: "Leave a chat room as staff",
			desc:   "Staff self-leave, in an active room: \"NAME left the room.\" is posted and the caller leaves. 409 when the room is not active or the caller had not joined through join.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{202: jsonResp("", ref("MatrixRoom"))}, errors: []int{404, 409}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/export_history/", id: "matrix_rooms_export_history", tag: rooms, access: staffWrites,
			summary: "Export a room's history",
			desc:    "Queues a manual export of the room's history (202). When an export of the room already waits, answers that one (200). At most 10 manual exports of a room in 24 hours (then 429); 409 when the room does not exist on the homeserver yet.",
			params:  []*Parameter{uuidParam},
			ok: map[int]*Response{
				202: jsonResp("Queued.", ref("MatrixHistoryExport")),
				200: jsonResp("An export of the room was already waiting: that one.", ref("MatrixHistoryExport")),
			},
			errors: []int{404, 409, 429}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/messages/", id: "matrix_rooms_messages_create", tag: rooms, access: staffWrites,
			summary: "Post a message from the bot into a room",
			desc:    "Queues a notification into the room's outbox (202): the bot posts it with the Markdown rendered to sanitized HTML, retrying after 5 s, 30 s, 2 min, 10 min and 30 min before it is failed. Only an active room takes messages (409 otherwise).",
			params:  []*Parameter{uuidParam}, body: fieldsBody("MatrixRoomMessageRequest", true),
			ok: map[int]*Response{202: jsonResp("The queued message.", ref("MatrixRoomMessage"))}, errors: []int{400, 404, 409}},
		{method: http.MethodGet, path: "/api/matrix-user-profiles/", id: "matrix_user_profiles_list", tag: profiles, access: staffWrites, summary: "List users' Matrix accounts",
			params: append([]*Parameter{searchParam, query("provisioned", &Schema{Type: "boolean"}, "")}, pageParams...),
			ok:     map[int]*Response{200: listResp("MatrixUserProfile")}, errors: []int{400, 404}},
		{method: http.MethodPost, path: "/api/matrix-rooms/{uuid}/open/", id: "matrix_rooms_open", tag: rooms, access: anyUser, summary: "Open a chat room's conversation",
			desc: "Returns the Matrix room ID to a member of the room (an active user with a role in the project, or staff who joined), accepting " +
				"their pending invite by joining as them through the appservice. Other callers get 403; a room that is not active gets 409.",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("MatrixRoomOpen"))}, errors: []int{403, 404, 409}},
		{method: http.MethodGet, path: "/api/matrix/credentials/", id: "matrix_credentials_retrieve", tag: matrixTag, access: anyUser,
			summary: "The caller's Matrix account",
			desc: "How the caller reaches their own Matrix account from a Matrix client: the sign-in method, the public homeserver URL, their Matrix user ID. " +
				"The account is provisioned on demand. 404 while Matrix chat is disabled; 503 when the account cannot be provisioned (the homeserver failed, or an account with the user's ID existed before and is not linked).",
			ok: map[int]*Response{200: jsonResp("", ref("MatrixCredentials"))}, errors: []int{404, 503}},
		{method: http.MethodPost, path: "/api/matrix/session/", id: "matrix_session_create", tag: matrixTag, access: anyUser,
			summary: "A Matrix session for the caller",
			desc: fmt.Sprintf("A new Matrix session (a new device) for the caller, made with the appservice login (m.login.application_service): "+
				"a platform's web chat opens the user's rooms with it, without a password. At most %d per user per hour, then 429. "+
				"The account is provisioned on demand. 404 while Matrix chat is disabled; 503 when the account cannot be provisioned or the homeserver makes no session.", api.SessionsPerHour),
			ok: map[int]*Response{200: jsonResp("The session (Cache-Control: no-store).", ref("MatrixSession"))}, errors: []int{404, 429, 503}},

		{method: http.MethodGet, path: "/api/matrix-exports/", id: "matrix_exports_list", tag: exportsTag, access: staffHidden, summary: "List history exports",
			desc: "Newest first.",
			params: append([]*Parameter{
				query("room_uuid", str(""), "A room's UUID."),
				query("state", &Schema{Type: "string", Enum: exportStates()}, ""),
				query("export_type", &Schema{Type: "string", Enum: exportTypes()}, ""),
			}, pageParams...),
			ok: map[int]*Response{200: listResp("MatrixHistoryExport")}, errors: []int{400}},
		{method: http.MethodGet, path: "/api/matrix-exports/{uuid}/", id: "matrix_exports_retrieve", tag: exportsTag, access: staffHidden, summary: "Get a history export",
			params: []*Parameter{uuidParam}, ok: map[int]*Response{200: jsonResp("", ref("MatrixHistoryExport"))}},
		{method: http.MethodGet, path: "/api/matrix-exports/{uuid}/download/export/", id: "matrix_exports_download_export", tag: exportsTag, access: staffHidden,
			summary: "Download an export's JSON document",
			desc:    "The decrypted document, streamed as an attachment. The whole file is checked before the first byte is sent: one that fails its integrity check is 409 and never served. 404 until the export is completed.",
			params:  []*Parameter{uuidParam},
			ok: map[int]*Response{
				200: download("The document.", "application/json", ref("MatrixHistoryExportDocument")),
				409: jsonResp("The file failed its integrity check (changed, cut short, missing, or encrypted under another master key): it is not served.", ref("Detail")),
			}},
		{method: http.MethodGet, path: "/api/matrix-exports/{uuid}/download/media/", id: "matrix_exports_download_media", tag: exportsTag, access: staffHidden,
			summary: "Download an export's media ZIP",
			desc:    "The decrypted ZIP of the attachments ({event_id}_{file name} entries), streamed as an attachment, checked whole first like the document. 404 when the export has none.",
			params:  []*Parameter{uuidParam},
			ok: map[int]*Response{
				200: download("The ZIP.", "application/zip", &Schema{Type: "string", Format: "binary"}),
				409: jsonResp("The file failed its integrity check: it is not served.", ref("Detail")),
			}},
		{method: http.MethodPost, path: "/api/waldur/events/{secret}/", id: "waldur_events_create", tag: platform, access: anyone,
			summary: "Receive a platform event (the platform's web hook)",
			desc: "The platform (Waldur) posts one event per request. The secret in the path (WALDUR_EVENTS_SECRET) is the credential, compared in constant time: " +
				"no session or token is needed, and no cross-site check applies. A wrong secret, or no receiver configured, is 404. The event is stored before the 202 " +
				"and applied by a worker that re-reads what it names from the platform; event types the sync does not handle are counted and ignored.",
			params: []*Parameter{pathParam("secret", "WALDUR_EVENTS_SECRET.")},
			body: &RequestBody{Required: true, Content: map[string]MediaType{
				"application/json":                  {Schema: ref("PlatformEvent")},
				"application/x-www-form-urlencoded": {Schema: ref("PlatformEventForm")},
			}},
			ok:     map[int]*Response{202: jsonResp("Stored; it will be applied.", ref("PlatformEventAccepted"))},
			errors: []int{400, 404}},

		{method: http.MethodGet, path: "/api/schema/", id: "schema_retrieve", tag: schema, access: anyone, summary: "This OpenAPI document",
			desc:   "OpenAPI 3 description of this API: JSON, or YAML with ?format=yaml. It describes paths and shapes only, the same for every installation, so it needs no credentials.",
			params: []*Parameter{query("format", &Schema{Type: "string", Enum: []any{"json", "yaml"}}, "Default json.")},
			ok: map[int]*Response{200: {Description: "The document.", Content: map[string]MediaType{
				"application/json": {Schema: &Schema{Type: "object"}},
				"application/yaml": {Schema: &Schema{Type: "object"}},
			}}},
			errors: []int{400, 401}}, // 401: a wrong token is refused even here
	}
}

// download is a file answer: an attachment that no cache keeps.
func download(desc, mediaType string, s *Schema) *Response {
	return &Response{Description: desc, Content: map[string]MediaType{mediaType: {Schema: s}},
		Headers: map[string]*Header{
			"Content-Disposition": {Required: true, Schema: str(""), Description: `attachment; filename="matrix-history-<room>-<date>-<uuid>.json" (or -media.zip).`},
			"Content-Length":      {Required: true, Schema: &Schema{Type: "integer"}, Description: "The decrypted size."},
			"Cache-Control":       {Required: true, Schema: str(""), Description: "no-store"},
		}}
}

func exportStates() []any {
	out := make([]any, len(db.ExportStates))
	for i, s := range db.ExportStates {
		out[i] = string(s)
	}
	return out
}

func exportTypes() []any {
	out := make([]any, len(db.ExportTypes))
	for i, t := range db.ExportTypes {
		out[i] = string(t)
	}
	return out
}

func roomStates() []any {
	out := make([]any, len(db.RoomStates))
	for i, s := range db.RoomStates {
		out[i] = string(s)
	}
	return out
}

// Build returns the document. It panics on a mistake in the document's own definition
// (the tests build it, so such a mistake cannot reach a release).
func Build() *Document {
	schemas, err := responseComponents()
	if err != nil {
		panic(err)
	}
	for name, s := range requestSchemas() {
		if _, dup := schemas[name]; dup {
			panic("apidoc: component " + name + " defined twice")
		}
		schemas[name] = s
	}
	doc := &Document{
		OpenAPI: Version,
		Info: Info{
			Title:   "matrixas API",
			Version: "1",
			Description: "Admin and directory API of the Matrix appservice. It mirrors the platform's Django REST API: " +
				"errors are {\"detail\": \"...\"} or {\"field\": [\"message\", ...]}; lists are JSON arrays, paginated with " +
				"?page= and ?page_size=, the total in X-Result-Count and neighbouring pages in Link.",
		},
		Paths: map[string]*PathItem{},
		Components: Components{
			Schemas:   schemas,
			Responses: errorResponseComponents(),
			SecuritySchemes: map[string]*SecurityScheme{
				"tokenAuth": {Type: "apiKey", In: "header", Name: "Authorization",
					Description: "API token: \"Token <key>\", the keyword in any case (create one under Account in the dashboard, or with 'matrixas createtoken USERNAME'). Token requests without the session cookie are not subject to the browser CSRF check."},
				"cookieAuth": {Type: "apiKey", In: "cookie", Name: auth.SessionCookie,
					Description: "The dashboard's session cookie. Unsafe methods must come from this site (cross-origin requests are refused)."},
			},
		},
		Security: []SecurityRequirement{{"tokenAuth": {}}, {"cookieAuth": {}}},
		Tags: []Tag{
			{Name: "admin", Description: "Appservice setup, status, diagnostics and reprovisioning (staff only)."},
			{Name: "users", Description: "The platform's users, as synced into this server."},
			{Name: "projects", Description: "The platform's projects and their members' roles."},
			{Name: "matrix-rooms", Description: "The Matrix room of each project."},
			{Name: "matrix-user-profiles", Description: "Each user's Matrix account."},
			{Name: "matrix-exports", Description: "Room history exports: their records and their decrypted files (staff only)."},
			{Name: "matrix", Description: "The caller's own Matrix account: how to reach it, and sessions for a web chat."},
			{Name: "customers", Description: "The platform's customers (organisations): their owners are members of their projects' rooms."},
			{Name: "platform", Description: "The platform sync (Waldur): its status, runs on demand, and the event receiver."},
			{Name: "schema", Description: "This document."},
		},
	}
	ids := map[string]bool{}
	for _, s := range specs() {
		if ids[s.id] {
			panic("apidoc: operationId " + s.id + " used twice")
		}
		ids[s.id] = true
		item := doc.Paths[s.path]
		if item == nil {
			item = &PathItem{}
			doc.Paths[s.path] = item
		}
		if item.Operation(s.method) != nil || !item.setOperation(s.method, s.operation()) {
			panic("apidoc: " + s.method + " " + s.path + " defined twice or not a supported method")
		}
	}
	return doc
}

// operation turns a spec into an Operation, adding the answers its access implies.
func (s spec) operation() *Operation {
	op := &Operation{OperationID: s.id, Summary: s.summary, Tags: []string{s.tag}, Parameters: s.params, RequestBody: s.body,
		Responses: map[string]*Response{}}
	errs := map[int]bool{}
	for _, c := range s.errors {
		errs[c] = true
	}
	write := s.method != http.MethodGet && s.method != http.MethodHead
	who := ""
	switch s.access {
	case anyone:
		op.Security = &[]SecurityRequirement{{}}
		who = "No credentials needed."
	case staffOnly:
		errs[401], errs[403] = true, true
		who = "Staff only."
	case staffHidden:
		errs[401], errs[404] = true, true
		who = "Staff only; anyone else gets 404, as for an unknown object."
	case anyUser:
		errs[401] = true
		who = "Any authenticated caller, for themselves."
	case staffWrites:
		errs[401] = true
		if write {
			errs[403] = true
			who = "Staff only."
		} else {
			who = "Any authenticated caller."
		}
	}
	if s.body != nil {
		errs[413] = true
		if _, form := s.body.Content["application/x-www-form-urlencoded"]; form {
			errs[415] = true // read by readFields, which refuses other media types
		}
	}
	op.Description = s.desc
	if op.Description != "" {
		op.Description += " "
	}
	op.Description += who
	for code, r := range s.ok {
		if r.Description == "" { // required by OpenAPI
			r.Description = http.StatusText(code)
		}
		op.Responses[strconv.Itoa(code)] = r
	}
	codes := make([]int, 0, len(errs))
	for c := range errs {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		e, ok := errorResponses[c]
		if !ok {
			panic(fmt.Sprintf("apidoc: %s: no shared response for status %d", s.id, c))
		}
		op.Responses[strconv.Itoa(c)] = &Response{Ref: "#/components/responses/" + e.name}
	}
	return op
}
