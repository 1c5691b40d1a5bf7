package fakewaldur

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Customer is an organisation of the fake platform.
type Customer struct {
	UUID         string // 32 hex digits; New* fills it when empty
	Name         string
	Abbreviation string // at most 12 characters, as the API says
	Archived     bool
	Created      time.Time // filled from the fake's clock when zero
	Modified     time.Time
}

// Project is a project of the fake platform. Removed is the platform's soft delete
// (is_removed): the project leaves the default lists, and its roles are revoked.
type Project struct {
	UUID         string
	Name         string
	CustomerUUID string
	Description  string
	Removed      bool
	Created      time.Time
	Modified     time.Time
}

// User is a platform user. Username must match the API's pattern ^[0-9a-z_.@+-]+$.
type User struct {
	UUID      string
	Username  string
	Email     string
	FirstName string
	LastName  string
	Active    bool
	Staff     bool
	Created   time.Time // date_joined
	Modified  time.Time
}

// FullName is what the platform shows as full_name.
func (u *User) FullName() string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// Permission is a role grant (the platform's UserRole). Only active grants are listed;
// an expired one stays listed until revoked, as on the platform, where a periodic task
// deactivates it.
type Permission struct {
	UUID         string
	UserUUID     string
	Role         string // "CUSTOMER.OWNER", "PROJECT.ADMIN", "CUSTOMER.SUPPORT", ...
	ScopeType    string // "customer", "project", "offering", ...
	ScopeUUID    string
	CustomerUUID string    // filled from the scope when empty
	Expiration   time.Time // zero: none
	Active       bool      // Grant sets it; Revoke clears it
	Created      time.Time
	Modified     time.Time
}

// Resource is a marketplace resource of a project.
type Resource struct {
	UUID         string
	Name         string
	State        string // Creating, OK, Erred, Updating, Terminating, Terminated
	OfferingName string
	ProjectUUID  string
	Created      time.Time
	Modified     time.Time
}

// Order is a marketplace order of a project.
type Order struct {
	UUID              string
	State             string // pending-consumer, ..., done, erred, canceled, rejected
	Type              string // Create, Update, Terminate, Restore
	ResourceName      string
	OfferingName      string
	ProjectUUID       string
	CreatedByUsername string
	CreatedByFullName string
	Created           time.Time
	Modified          time.Time
}

// Hook is a web hook registered through POST /api/hooks-web/.
type Hook struct {
	UUID           string
	DestinationURL string
	EventTypes     []string
	EventGroups    []string
	ContentType    string // "json" or "form"
	IsActive       bool
	Created        time.Time
	Modified       time.Time
}

// The token's owner: the staff user every answer is authored by.
const (
	staffUUID     = "5af5af5af5af4af58af5af5af5af5af5"
	staffUsername = "staff"
	staffName     = "Staff User"
	staffEmail    = "staff@example.org"
)

// roleUUIDs are the platform's role objects.
var roleUUIDs = map[string]string{
	"CUSTOMER.OWNER":   "0c0c0c0c0c0c4c0c8c0c000000000001",
	"CUSTOMER.MANAGER": "0c0c0c0c0c0c4c0c8c0c000000000002",
	"CUSTOMER.SUPPORT": "0c0c0c0c0c0c4c0c8c0c000000000003",
	"PROJECT.ADMIN":    "0c0c0c0c0c0c4c0c8c0c000000000004",
	"PROJECT.MANAGER":  "0c0c0c0c0c0c4c0c8c0c000000000005",
	"PROJECT.MEMBER":   "0c0c0c0c0c0c4c0c8c0c000000000006",
}

func roleUUID(role string) string {
	if id, ok := roleUUIDs[role]; ok {
		return id
	}
	return "0c0c0c0c0c0c4c0c8c0c0000000000ff"
}

// platform is the fake's state; Server.mu guards it.
type platform struct {
	clock   time.Time
	version uint64 // counts changes: a cached list is good while it matches
	lists   map[string]cachedList

	customers  []Customer
	customerAt map[string]int
	projects   []Project
	projectAt  map[string]int
	users      []User
	userAt     map[string]int
	perms      []Permission
	permAt     map[string]int
	resources  []Resource
	orders     []Order
	orderAt    map[string]int
	hooks      []Hook
}

func newPlatform(now time.Time) *platform {
	return &platform{
		clock:      now.UTC().Truncate(time.Microsecond),
		customerAt: map[string]int{},
		projectAt:  map[string]int{},
		userAt:     map[string]int{},
		permAt:     map[string]int{},
		orderAt:    map[string]int{},
		lists:      map[string]cachedList{},
	}
}

// tick advances the clock a microsecond per change, so every change has its own
// created/modified time and lists ordered by creation are stable.
func (p *platform) tick() time.Time {
	p.version++
	p.clock = p.clock.Add(time.Microsecond)
	return p.clock
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// stamp fills a new object's uuid and times.
func (p *platform) stamp(uuid *string, created, modified *time.Time) {
	now := p.tick()
	if *uuid == "" {
		*uuid = newUUID()
	}
	if created.IsZero() {
		*created = now
	}
	if modified.IsZero() {
		*modified = *created
	}
}

func (p *platform) customer(uuid string) *Customer {
	if i, ok := p.customerAt[uuid]; ok {
		return &p.customers[i]
	}
	return nil
}

func (p *platform) project(uuid string) *Project {
	if i, ok := p.projectAt[uuid]; ok {
		return &p.projects[i]
	}
	return nil
}

func (p *platform) user(uuid string) *User {
	if i, ok := p.userAt[uuid]; ok {
		return &p.users[i]
	}
	return nil
}

// reindex rebuilds the positions after a hard delete.
func (p *platform) reindex() {
	clear(p.customerAt)
	for i := range p.customers {
		p.customerAt[p.customers[i].UUID] = i
	}
	clear(p.userAt)
	for i := range p.users {
		p.userAt[p.users[i].UUID] = i
	}
	clear(p.permAt)
	for i := range p.perms {
		p.permAt[p.perms[i].UUID] = i
	}
}

// scopeName is the name of a grant's scope, for scope_name.
func (p *platform) scopeName(perm *Permission) string {
	switch perm.ScopeType {
	case "customer":
		if c := p.customer(perm.ScopeUUID); c != nil {
			return c.Name
		}
	case "project":
		if pr := p.project(perm.ScopeUUID); pr != nil {
			return pr.Name
		}
	}
	return ""
}

// findPerm returns the active grant of role to user on scope.
func (p *platform) findPerm(userUUID, role, scopeUUID string) *Permission {
	for i := range p.perms {
		pm := &p.perms[i]
		if pm.Active && pm.UserUUID == userUUID && pm.Role == role && pm.ScopeUUID == scopeUUID {
			return pm
		}
	}
	return nil
}

// Scale sizes a generated platform.
type Scale struct {
	Customers int
	Projects  int
	Users     int
	// Roles is the number of grants: one CUSTOMER.OWNER per customer first, the rest
	// PROJECT.ADMIN, PROJECT.MANAGER and PROJECT.MEMBER spread over the projects.
	Roles int
}

// genUUID is a generated object's uuid: its kind and index, distinct from random ones
// (whose version digit is 4).
func genUUID(kind byte, i int) string {
	return fmt.Sprintf("%02x%06x%08x%016x", kind, 0, i, 0)
}

// generate adds a platform of the given scale, cheaply: names are built from indices,
// every 50th user is inactive, no grant expires.
func (p *platform) generate(sc Scale) error {
	if sc.Customers < 1 || sc.Projects < 1 || sc.Users < 1 {
		return fmt.Errorf("fakewaldur: a generated platform needs customers, projects and users")
	}
	base := p.clock
	at := func(i int) time.Time { return base.Add(time.Duration(i+1) * time.Microsecond) }
	n := 0
	// uuids continue the indices of earlier generations
	firstCustomer, firstUser, firstProject, firstPerm := len(p.customers), len(p.users), len(p.projects), len(p.perms)
	p.customers = slices.Grow(p.customers, sc.Customers)
	for i := range sc.Customers {
		c := Customer{UUID: genUUID(1, firstCustomer+i), Name: fmt.Sprintf("Customer %d", i), Abbreviation: fmt.Sprintf("C%d", i), Created: at(n)}
		c.Modified = c.Created
		p.customerAt[c.UUID] = len(p.customers)
		p.customers = append(p.customers, c)
		n++
	}
	p.users = slices.Grow(p.users, sc.Users)
	for i := range sc.Users {
		u := User{UUID: genUUID(3, firstUser+i), Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.org", i),
			FirstName: "User", LastName: fmt.Sprint(i), Active: i%50 != 49, Created: at(n)}
		u.Modified = u.Created
		p.userAt[u.UUID] = len(p.users)
		p.users = append(p.users, u)
		n++
	}
	p.projects = slices.Grow(p.projects, sc.Projects)
	for i := range sc.Projects {
		pr := Project{UUID: genUUID(2, firstProject+i), Name: fmt.Sprintf("Project %d", i), CustomerUUID: p.customers[firstCustomer+i%sc.Customers].UUID, Created: at(n)}
		pr.Modified = pr.Created
		p.projectAt[pr.UUID] = len(p.projects)
		p.projects = append(p.projects, pr)
		n++
	}
	p.perms = slices.Grow(p.perms, sc.Roles)
	type key struct{ user, scope int }
	taken := make(map[key]struct{}, sc.Roles)
	roles := [3]string{"PROJECT.ADMIN", "PROJECT.MANAGER", "PROJECT.MEMBER"}
	for i := 0; i < sc.Roles; i++ {
		pm := Permission{UUID: genUUID(4, firstPerm+i), Active: true, Created: at(n)}
		pm.Modified = pm.Created
		if i < sc.Customers {
			c := &p.customers[firstCustomer+i]
			pm.UserUUID, pm.Role, pm.ScopeType = p.users[firstUser+(i*13)%sc.Users].UUID, "CUSTOMER.OWNER", "customer"
			pm.ScopeUUID, pm.CustomerUUID = c.UUID, c.UUID
		} else {
			j := i - sc.Customers
			proj, k := j%sc.Projects, j/sc.Projects
			user := (proj*17 + k*3331) % sc.Users
			for tries := 0; ; tries++ { // a small platform runs out of distinct pairs
				if _, dup := taken[key{user, proj}]; !dup {
					break
				}
				if tries == sc.Users {
					return fmt.Errorf("fakewaldur: %d roles do not fit %d users and %d projects", sc.Roles, sc.Users, sc.Projects)
				}
				user = (user + 1) % sc.Users
			}
			taken[key{user, proj}] = struct{}{}
			pr := &p.projects[firstProject+proj]
			pm.UserUUID, pm.Role, pm.ScopeType = p.users[firstUser+user].UUID, roles[k%3], "project"
			pm.ScopeUUID, pm.CustomerUUID = pr.UUID, pr.CustomerUUID
		}
		p.permAt[pm.UUID] = len(p.perms)
		p.perms = append(p.perms, pm)
		n++
	}
	p.clock = at(n)
	p.version++
	return nil
}
