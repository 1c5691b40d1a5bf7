// Package waldur is the client of the platform's REST API (Waldur): the directory the
// sync mirrors (customers, projects, users, role assignments), the live reads the bot
// and the events worker need (resources, orders, single objects, a scope's roles), the
// web hook registration, and the parsing of the events the platform pushes.
//
// It is written for a sync engine that works in two steps. First it lists every kind
// with the list methods, collecting only what it needs (uuids, names, a role set): the
// items arrive through a callback, page by page, so memory does not grow with the
// platform. Only after every listing of a run has succeeded does it compute the
// differences against the store and apply them. A listing that fails half-way (a 5xx
// after the retries, a timeout, a rejected token, a malformed page, a list that shifted
// under the reader) returns an error; the items it delivered before are then incomplete,
// and the engine must change nothing, so that a platform outage never empties rooms.
//
// What the lists can and cannot say:
//   - Lists are requested with page_size=300 and followed through their Link rel="next"
//     header, never by building page URLs, so a full listing of N items costs
//     ceil(N/300) requests (plus retries).
//   - A project deleted on the platform disappears from the full project list; an
//     incremental listing asks for terminated projects too, and marks them Removed.
//   - The role list holds only active grants; a grant whose expiration time has passed
//     is dropped here as revoked. An incremental role listing (ModifiedSince) therefore
//     shows grants created or changed, never revocations: those come from role_revoked
//     events (re-read with ScopeRoles or UserRoles) and from the next full reconcile.
//   - Incremental listings take a since time; the caller passes the start of its last
//     successful run minus a safety margin (the platform's clock and ours differ).
//
// Errors: 429 and 5xx answers and network failures are retried with backoff, honouring
// Retry-After, a bounded number of times; a 401 or 403 is ErrTokenRejected, never an
// empty result; every request has a timeout. Error messages name the method and path,
// never the token or a query string (a hook's destination URL holds a secret).
package waldur
