package waldur

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Role is a role name the platform grants on a customer or a project.
type Role string

// The roles the directory mirrors; the platform has others (CUSTOMER.MANAGER,
// CUSTOMER.SUPPORT, offering roles...), which the listings leave out.
const (
	RoleCustomerOwner  Role = "CUSTOMER.OWNER"
	RoleProjectAdmin   Role = "PROJECT.ADMIN"
	RoleProjectManager Role = "PROJECT.MANAGER"
	RoleProjectMember  Role = "PROJECT.MEMBER"
)

// ScopeType is what a role is granted on.
type ScopeType string

// The scopes of the mirrored roles.
const (
	ScopeCustomer ScopeType = "customer"
	ScopeProject  ScopeType = "project"
)

// scopeOf is the scope each mirrored role belongs to.
var scopeOf = map[Role]ScopeType{
	RoleCustomerOwner:  ScopeCustomer,
	RoleProjectAdmin:   ScopeProject,
	RoleProjectManager: ScopeProject,
	RoleProjectMember:  ScopeProject,
}

// Customer is an organisation on the platform. UUIDs here and below are 32 lowercase
// hex digits, the platform's own form (and the store's).
type Customer struct {
	UUID         string
	Name         string
	Abbreviation string
}

// Project is a project on the platform. Removed is true for a project the platform
// has terminated (soft-deleted); such projects appear only in incremental listings and
// single reads, a full listing leaves them out (absent = removed).
type Project struct {
	UUID         string
	Name         string
	CustomerUUID string
	Removed      bool
}

// User is a platform user. An inactive user keeps their roles on the platform but must
// lose their rooms.
type User struct {
	UUID     string
	Username string
	Email    string
	FullName string
	Active   bool
}

// RoleAssignment is an active, unexpired grant of one of the mirrored roles.
// CustomerUUID is the customer of the scope: the scope itself for a customer role, the
// project's customer for a project role (empty when the answer did not say, as in
// ScopeRoles for a project: the caller knows the project's customer).
type RoleAssignment struct {
	UserUUID     string
	Role         Role
	ScopeType    ScopeType
	ScopeUUID    string
	CustomerUUID string
	Expiration   time.Time // zero: never expires
}

// ListOptions narrows a listing.
type ListOptions struct {
	// ModifiedSince, when not zero, lists only what changed at or after it. Projects,
	// users and roles have the filter; customers do not and are always listed whole.
	ModifiedSince time.Time
}

// The fields each list asks for (field=...), all checked against the API description:
// pages shrink to what the directory stores.
var (
	customerFields = []string{"uuid", "name", "abbreviation"}
	projectFields  = []string{"uuid", "name", "customer_uuid", "is_removed"}
	userFields     = []string{"uuid", "username", "email", "full_name", "is_active"}
	scopeRoleField = []string{"uuid", "user_uuid", "role_name", "expiration_time"}
)

type wireCustomer struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	Abbreviation string `json:"abbreviation"`
}

type wireProject struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	CustomerUUID string `json:"customer_uuid"`
	IsRemoved    bool   `json:"is_removed"`
}

type wireUser struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Email    string `json:"email"`
	FullName string `json:"full_name"`
	IsActive *bool  `json:"is_active"` // absent must not read as "deactivated"
}

// wirePermission is an item of /api/user-permissions/ (no field selection there).
type wirePermission struct {
	UserUUID       string `json:"user_uuid"`
	RoleName       string `json:"role_name"`
	ScopeType      string `json:"scope_type"`
	ScopeUUID      string `json:"scope_uuid"`
	CustomerUUID   string `json:"customer_uuid"`
	ExpirationTime string `json:"expiration_time"`
}

// wireScopeRole is an item of /api/{projects,customers}/{uuid}/list_users/.
type wireScopeRole struct {
	UUID           string `json:"uuid"`
	UserUUID       string `json:"user_uuid"`
	RoleName       string `json:"role_name"`
	ExpirationTime string `json:"expiration_time"`
}

// Customers lists every customer. Customers have no modified filter: an incremental
// run lists them whole too (they are few).
func (c *Client) Customers(ctx context.Context, fn func(Customer) error) error {
	q := fieldQuery(customerFields)
	return listPages(ctx, c, "/api/customers/", q, func(w *wireCustomer) string { return w.UUID },
		func(w *wireCustomer) error {
			cu, err := w.customer()
			if err != nil {
				return err
			}
			return fn(cu)
		})
}

// Projects lists projects, oldest first (so projects created meanwhile land after the
// reader). A full listing has only live projects; with ModifiedSince, terminated ones
// changed since then come too, with Removed set.
func (c *Client) Projects(ctx context.Context, opts ListOptions, fn func(Project) error) error {
	q := fieldQuery(projectFields)
	q.Set("o", "created")
	if !opts.ModifiedSince.IsZero() {
		q.Set("modified", formatTime(opts.ModifiedSince))
		q.Set("include_terminated", "true")
	}
	return listPages(ctx, c, "/api/projects/", q, func(w *wireProject) string { return w.UUID },
		func(w *wireProject) error {
			p, err := w.project()
			if err != nil {
				return err
			}
			return fn(p)
		})
}

// Users lists users, active or not.
func (c *Client) Users(ctx context.Context, opts ListOptions, fn func(User) error) error {
	q := fieldQuery(userFields)
	if !opts.ModifiedSince.IsZero() {
		q.Set("modified", formatTime(opts.ModifiedSince))
	}
	return listPages(ctx, c, "/api/users/", q, func(w *wireUser) string { return w.UUID },
		func(w *wireUser) error {
			u, err := w.user()
			if err != nil {
				return err
			}
			return fn(u)
		})
}

// RoleAssignments lists the active grants of the mirrored roles, oldest first, leaving
// out other roles and grants whose expiration time has passed (expired = revoked).
// With ModifiedSince it lists grants created or changed since; it cannot show
// revocations (the platform lists active grants only).
func (c *Client) RoleAssignments(ctx context.Context, opts ListOptions, fn func(RoleAssignment) error) error {
	q := url.Values{"o": {"created"}}
	if !opts.ModifiedSince.IsZero() {
		q.Set("modified", formatTime(opts.ModifiedSince))
	}
	return c.listPermissions(ctx, q, fn)
}

// UserRoles returns one user's active grants of the mirrored roles (for the events
// worker after a role or user event).
func (c *Client) UserRoles(ctx context.Context, userUUID string) ([]RoleAssignment, error) {
	id, err := pathUUID("/api/user-permissions/", userUUID)
	if err != nil {
		return nil, err
	}
	var out []RoleAssignment
	err = c.listPermissions(ctx, url.Values{"user": {id}}, func(r RoleAssignment) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func (c *Client) listPermissions(ctx context.Context, q url.Values, fn func(RoleAssignment) error) error {
	now := c.now()
	return listPages(ctx, c, "/api/user-permissions/", q,
		func(w *wirePermission) string {
			return w.UserUUID + "|" + w.RoleName + "|" + w.ScopeType + "|" + w.ScopeUUID
		},
		func(w *wirePermission) error {
			r, keep, err := roleAssignment(w.UserUUID, w.RoleName, w.ScopeType, w.ScopeUUID, w.CustomerUUID, w.ExpirationTime, now)
			if err != nil || !keep {
				return err
			}
			return fn(r)
		})
}

// ScopeRoles returns the active grants of the mirrored roles on one customer or
// project (its list_users), for the events worker: re-reading a scope after a role
// event makes the order and repetition of events harmless.
func (c *Client) ScopeRoles(ctx context.Context, scope ScopeType, scopeUUID string) ([]RoleAssignment, error) {
	var base string
	switch scope {
	case ScopeCustomer:
		base = "/api/customers/"
	case ScopeProject:
		base = "/api/projects/"
	default:
		return nil, fmt.Errorf("waldur: no role list for scope %q", scope)
	}
	id, err := pathUUID(base, scopeUUID)
	if err != nil {
		return nil, err
	}
	customer := ""
	if scope == ScopeCustomer {
		customer = id
	}
	now := c.now()
	var out []RoleAssignment
	err = listPages(ctx, c, base+id+"/list_users/", fieldQuery(scopeRoleField),
		func(w *wireScopeRole) string { return w.UUID + "|" + w.UserUUID + "|" + w.RoleName },
		func(w *wireScopeRole) error {
			r, keep, err := roleAssignment(w.UserUUID, w.RoleName, string(scope), id, customer, w.ExpirationTime, now)
			if err == nil && keep {
				out = append(out, r)
			}
			return err
		})
	return out, err
}

// Customer reads one customer; ErrNotFound when it does not exist (any more).
func (c *Client) Customer(ctx context.Context, uuid string) (Customer, error) {
	id, err := pathUUID("/api/customers/", uuid)
	if err != nil {
		return Customer{}, err
	}
	var w wireCustomer
	if err := getOne(ctx, c, "/api/customers/"+id+"/", fieldQuery(customerFields), &w); err != nil {
		return Customer{}, err
	}
	return w.customer()
}

// Project reads one project. A terminated project may still be readable (Removed set)
// or be ErrNotFound: both mean its room goes.
func (c *Client) Project(ctx context.Context, uuid string) (Project, error) {
	id, err := pathUUID("/api/projects/", uuid)
	if err != nil {
		return Project{}, err
	}
	var w wireProject
	if err := getOne(ctx, c, "/api/projects/"+id+"/", fieldQuery(projectFields), &w); err != nil {
		return Project{}, err
	}
	return w.project()
}

// User reads one user; ErrNotFound when deleted.
func (c *Client) User(ctx context.Context, uuid string) (User, error) {
	id, err := pathUUID("/api/users/", uuid)
	if err != nil {
		return User{}, err
	}
	var w wireUser
	if err := getOne(ctx, c, "/api/users/"+id+"/", fieldQuery(userFields), &w); err != nil {
		return User{}, err
	}
	return w.user()
}

func (w *wireCustomer) customer() (Customer, error) {
	id, ok := NormalizeUUID(w.UUID)
	if !ok {
		return Customer{}, malformed("a customer", "uuid", w.UUID)
	}
	return Customer{UUID: id, Name: w.Name, Abbreviation: w.Abbreviation}, nil
}

func (w *wireProject) project() (Project, error) {
	id, ok := NormalizeUUID(w.UUID)
	if !ok {
		return Project{}, malformed("a project", "uuid", w.UUID)
	}
	cu, ok := NormalizeUUID(w.CustomerUUID)
	if !ok {
		return Project{}, malformed("project "+id, "customer_uuid", w.CustomerUUID)
	}
	return Project{UUID: id, Name: w.Name, CustomerUUID: cu, Removed: w.IsRemoved}, nil
}

func (w *wireUser) user() (User, error) {
	id, ok := NormalizeUUID(w.UUID)
	if !ok {
		return User{}, malformed("a user", "uuid", w.UUID)
	}
	if w.IsActive == nil {
		return User{}, fmt.Errorf("%w: user %s has no is_active", ErrMalformed, id)
	}
	return User{UUID: id, Username: w.Username, Email: w.Email, FullName: w.FullName, Active: *w.IsActive}, nil
}

// roleAssignment normalises a grant. keep is false for roles not mirrored, for a role
// on a scope it does not belong to, and for grants expired at now.
func roleAssignment(user, role, scopeType, scope, customer, expiration string, now time.Time) (RoleAssignment, bool, error) {
	r := Role(role)
	st, mirrored := scopeOf[r]
	if !mirrored || ScopeType(scopeType) != st {
		return RoleAssignment{}, false, nil
	}
	var exp time.Time
	if expiration != "" {
		var err error
		if exp, err = time.Parse(time.RFC3339Nano, expiration); err != nil {
			return RoleAssignment{}, false, malformed("a "+role+" grant", "expiration_time", expiration)
		}
		if !exp.After(now) {
			return RoleAssignment{}, false, nil
		}
	}
	u, ok := NormalizeUUID(user)
	if !ok {
		return RoleAssignment{}, false, malformed("a "+role+" grant", "user_uuid", user)
	}
	s, ok := NormalizeUUID(scope)
	if !ok {
		return RoleAssignment{}, false, malformed("a "+role+" grant", "scope_uuid", scope)
	}
	cu := ""
	if customer != "" {
		if cu, ok = NormalizeUUID(customer); !ok {
			return RoleAssignment{}, false, malformed("a "+role+" grant", "customer_uuid", customer)
		}
	}
	if st == ScopeCustomer {
		cu = s
	}
	return RoleAssignment{UserUUID: u, Role: r, ScopeType: st, ScopeUUID: s, CustomerUUID: cu, Expiration: exp}, true, nil
}

func malformed(what, field, value string) error {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return fmt.Errorf("%w: %s has an invalid %s %q", ErrMalformed, what, field, value)
}

// pathUUID checks a uuid before it goes into a path.
func pathUUID(path, uuid string) (string, error) {
	id, ok := NormalizeUUID(uuid)
	if !ok {
		return "", fmt.Errorf("waldur: %s: %q is not a uuid", path, uuid)
	}
	return id, nil
}

// NormalizeUUID accepts a UUID with or without dashes, in any case, and returns the
// 32-lowercase-hex form the platform and the store use; ok is false for anything else.
func NormalizeUUID(s string) (string, bool) {
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(s) != 32 {
		return "", false
	}
	lower := true
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case '0' <= ch && ch <= '9', 'a' <= ch && ch <= 'f':
		case 'A' <= ch && ch <= 'F':
			lower = false
		default:
			return "", false
		}
	}
	if !lower {
		s = strings.ToLower(s)
	}
	return s, true
}

// fieldQuery asks for only these fields (repeated field=, as the API describes).
func fieldQuery(fields []string) url.Values {
	return url.Values{"field": append([]string(nil), fields...)}
}

// formatTime writes a filter time as the platform parses it: UTC, microseconds.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
