// Package platform mirrors a platform deployment (Waldur) into the directory: its
// customers, projects, users and the roles that put people in project rooms
// (CUSTOMER.OWNER, PROJECT.ADMIN, PROJECT.MANAGER, PROJECT.MEMBER), so that every
// project gets its room and every role its membership without glue code.
//
// A Syncer runs three kinds of work, all through package waldur:
//
//   - A full reconcile, every WALDUR_SYNC_INTERVAL and on demand: every kind is listed
//     whole (page_size=300, following the Link headers), and only after every listing
//     has succeeded is the directory read and compared with it, and the differences
//     applied, one store transaction per kind of change (customers, users, projects,
//     roles, then the removals). A listing that fails half-way (a 5xx after the
//     retries, a timeout, a rejected token, a malformed page) ends the run as failed
//     and changes nothing, so a platform outage never empties a room. Rows present here
//     but absent there are removed only if the sync owns them (source "waldur").
//   - An incremental run between full ones (IncrementalPeriod): customers whole (they
//     have no modified filter), projects, users and role grants modified since the
//     start of the last successful run minus SafetyMargin. The role list shows grants,
//     never revocations, so the users whose grants changed have their whole role set
//     re-read (one small request each), which catches a changed role; revocations
//     otherwise come from role_revoked events and from the next full reconcile.
//   - The events worker: events the platform pushes to the receiver are stored first
//     (db.InsertPlatformEvent, before the receiver answers), then applied in order by
//     re-reading what they name (a project, a customer, a user, a scope's roles, an
//     order), so that their order and repetition do not matter.
//
// What the sync writes goes through the directory's own transactions in package db,
// which queue the role notifications and the rooms' member syncs; the provisioning
// worker and the bot's sender are woken after each run. A project removed on the
// platform goes through the same store function as DELETE /api/projects/{uuid}/.
package platform
