package bot

import "matrixas/db"

// RoleNotices hands the role-change texts to the store (db.Store.SetRoleNotices), which
// queues them in the same transaction as the role write, so that the directory API and
// the platform sync both announce what they change.
type RoleNotices struct{}

var _ db.RoleNotices = RoleNotices{}

// RoleGranted is RoleGranted's text.
func (RoleNotices) RoleGranted(name, role string) string { return RoleGranted(name, role) }

// RoleRevoked is RoleRevoked's text.
func (RoleNotices) RoleRevoked(name, role string) string { return RoleRevoked(name, role) }
