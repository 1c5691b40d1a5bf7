package apidoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/internal/fakesynapse"
	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// TestDocumentedMediaTypesAreParsed sends, for every operation with a request body,
// a body in each media type the document lists for it, and checks the server read its
// fields: the answer is a success that carries the value sent. A listed media type the
// handlers ignore (issue 13: multipart/form-data, whose fields were dropped) fails here.
func TestDocumentedMediaTypesAreParsed(t *testing.T) {
	doc := loadDoc(t)
	const secret = "media-types-events-secret"
	ts := testserver.New(t, testserver.Options{Env: testserver.PlatformEnv(fakewaldur.New(t), secret)})
	ts.WaitSynced(t, 0)
	n := 0
	fresh := func() string { n++; return fmt.Sprintf("mt%d", n) }
	create := func(path string, body map[string]any) string {
		var out struct{ UUID string }
		if code := ts.JSON(t, http.MethodPost, path, ts.StaffToken, body, &out); code != http.StatusCreated {
			t.Fatalf("POST %s: %d", path, code)
		}
		return out.UUID
	}
	user := create("/api/users/", map[string]any{"username": "media-user"})

	// sample returns a path and fields for an operation on schema, and the value the
	// answer must carry if the fields were read.
	sample := func(path, schema string) (string, map[string]string, string) {
		v := fresh()
		path = strings.ReplaceAll(path, "{uuid}", map[bool]string{true: user, false: ""}[strings.HasPrefix(path, "/api/users/")])
		if strings.Contains(path, "/api/projects//") {
			path = strings.ReplaceAll(path, "/api/projects//", "/api/projects/"+create("/api/projects/", map[string]any{"name": "P " + v})+"/")
		}
		if strings.Contains(path, "/api/customers//") {
			path = strings.ReplaceAll(path, "/api/customers//", "/api/customers/"+create("/api/customers/", map[string]any{"name": "C " + v})+"/")
		}
		path = strings.ReplaceAll(path, "{secret}", secret)
		switch schema {
		case "UserRequest":
			return path, map[string]string{"username": "user-" + v}, "user-" + v
		case "PatchedUserRequest":
			return path, map[string]string{"full_name": "Name " + v}, "Name " + v
		case "ProjectRequest":
			return path, map[string]string{"name": "Project " + v}, "Project " + v
		case "PatchedProjectRequest":
			return path, map[string]string{"description": "About " + v}, "About " + v
		case "MatrixRoomRequest":
			p := create("/api/projects/", map[string]any{"name": "Room " + v})
			return path, map[string]string{"project": p}, p
		case "MatrixAppserviceSetupRequest":
			return path, map[string]string{"url": "http://as.example.org", "homeserver_url": "http://127.0.0.1:9",
				"homeserver_domain": "example.org", "user_registration_secret": "media-secret", "sender_localpart": "bot-" + v}, "bot-" + v
		case "ProjectMemberRequest":
			return path, map[string]string{"user": user, "role": "member"}, user
		case "CustomerRequest":
			return path, map[string]string{"name": "Customer " + v}, "Customer " + v
		case "PatchedCustomerRequest":
			return path, map[string]string{"abbreviation": v}, v
		case "CustomerOwnerRequest":
			return path, map[string]string{"user": user}, user
		case "PlatformSyncRequest":
			ts.WaitSynced(t, -1) // the previous run (each answer starts one) has ended
			return path, map[string]string{"mode": "incremental"}, `"running_kind":"incremental"`
		case "PlatformEvent", "PlatformEventForm":
			return path, map[string]string{"event_type": "user_update_succeeded", "message": v}, "Event received."
		case "LinkMatrixAccountRequest":
			// A homeserver that answers the admin check (Synapse with the bot an admin), on
			// which the user's own account name is taken: the worker's registration for the
			// new user is refused, never made (a user whose account works keeps it, and the
			// worker may get there before the link).
			if err := ts.Web.Settings().Set(context.Background(), map[string]string{
				settings.HomeserverURL.Key: fakesynapse.New(t, fakesynapse.Options{BotIsAdmin: true,
					Existing: []string{"@link-" + v + ":localhost"}}).URL}); err != nil {
				t.Fatal(err)
			}
			// A user of its own each time.
			other := create("/api/users/", map[string]any{"username": "link-" + v})
			mxid := "@linked-" + v + ":example.org"
			return strings.Replace(path, user, other, 1), map[string]string{"matrix_user_id": mxid}, mxid
		case "MatrixRoomDisableRequest": // an active room's
			room := create("/api/matrix-rooms/", map[string]any{"project": create("/api/projects/", map[string]any{"name": "Disable " + v})})
			r, err := ts.Store.RoomByUUID(context.Background(), room)
			if err != nil {
				t.Fatal(err)
			}
			ts.Store.SetRoomHomeserverID(context.Background(), r.ID, id.RoomID("!"+v+":example.org"), "", "")
			if err := ts.Store.FinishRoomSync(context.Background(), r.ID, "Disable "+v); err != nil {
				t.Fatal(err)
			}
			return strings.ReplaceAll(path, "/api/matrix-rooms//", "/api/matrix-rooms/"+room+"/"), map[string]string{"delete_history": "true"}, `"delete_history":true`
		case "MatrixRoomMessageRequest":
			room := create("/api/matrix-rooms/", map[string]any{"project": create("/api/projects/", map[string]any{"name": "Talk " + v})})
			r, err := ts.Store.RoomByUUID(context.Background(), room)
			if err != nil {
				t.Fatal(err)
			}
			// Active, as the worker leaves it: only an active room takes messages.
			if err := ts.Store.SetRoomHomeserverID(context.Background(), r.ID, id.RoomID("!"+v+":localhost"), "", ""); err != nil {
				t.Fatal(err)
			}
			if err := ts.Store.FinishRoomSync(context.Background(), r.ID, "Talk"); err != nil {
				t.Fatal(err)
			}
			return strings.ReplaceAll(path, "/api/matrix-rooms//", "/api/matrix-rooms/"+room+"/"), map[string]string{"body": "Hello " + v}, "Hello " + v
		}
		t.Fatalf("no sample for request schema %s: add one", schema)
		return "", nil, ""
	}
	encode := func(mediaType string, fields map[string]string) (io.Reader, string) {
		switch mediaType {
		case "application/json":
			b, _ := json.Marshal(fields)
			return bytes.NewReader(b), mediaType
		case "application/x-www-form-urlencoded":
			v := url.Values{}
			for k, s := range fields {
				v.Set(k, s)
			}
			return strings.NewReader(v.Encode()), mediaType
		case "multipart/form-data":
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			for k, s := range fields {
				w.WriteField(k, s)
			}
			w.Close()
			return &buf, w.FormDataContentType()
		}
		t.Errorf("the document lists %s, which this test cannot send: teach it", mediaType)
		return nil, ""
	}

	checked := 0
	paths := make([]string, 0, len(doc.Paths.Map()))
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for method, op := range doc.Paths.Value(p).Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for mediaType, mt := range op.RequestBody.Value.Content {
				schema := ""
				if mt.Schema != nil {
					schema = mt.Schema.Ref
					if schema == "" && mt.Schema.Value != nil && mt.Schema.Value.Items != nil {
						schema = mt.Schema.Value.Items.Ref // a list of items
					}
				}
				schema = schema[strings.LastIndex(schema, "/")+1:]
				path, fields, want := sample(p, schema)
				body, ct := encode(mediaType, fields)
				if body == nil {
					continue
				}
				if (strings.HasPrefix(schema, "ProjectMember") || strings.HasPrefix(schema, "CustomerOwner")) && method == http.MethodPut {
					b, _ := json.Marshal([]map[string]string{fields})
					body = bytes.NewReader(b)
				}
				req, err := http.NewRequest(method, ts.URL+path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Authorization", "Token "+ts.StaffToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 || !strings.Contains(string(got), want) {
					t.Errorf("%s %s as %s: %d %.300s; want a success carrying %q (the fields were not read)", method, p, mediaType, resp.StatusCode, got, want)
				}
				checked++
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d (operation, media type) pairs; the document has more", checked)
	}
}
