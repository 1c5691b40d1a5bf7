// Package export writes a room's history into encrypted files: one JSON document per
// export and, when media export is on, a ZIP of its attachments.
//
// # The document
//
// One JSON object, written as a stream while the history is paged backwards (100 events
// a page through matrix.RoomIO), so memory does not grow with the room:
//
//	{"room_id": "!r:example.org", "room_name": "Project X",
//	 "exported_at": "2026-05-01T02:00:00.000Z",
//	 "messages": [ {newest message}, ..., {oldest message} ],
//	 "message_count": 250, "media_count": 3}
//
// The counts are known only at the end, so they come after the array (the order of an
// object's keys is not significant in JSON). Message describes an entry and which
// events count as messages.
//
// # Encryption at rest
//
// Every file has its own random 256-bit key, wrapped by the master key
// (EXPORT_ENCRYPTION_KEY, EXPORT_ENCRYPTION_KEY_FILE, or a key generated once into
// export-encryption.key beside the database; see LoadMasterKey) and stored in the file's
// header. The content is AES-256-GCM in 64 KiB chunks (container.go has the layout), so
// a download streams, and a changed, truncated, reordered or misplaced file fails with
// ErrIntegrity. Open checks a whole file before handing out its first byte.
//
// # Files on disk
//
// Files are written under a temporary name (".NAME.partial-*") and renamed to their
// final name only when complete and synced; RemoveUnfinished deletes what a crash left.
// Attachments are spooled through temporary files encrypted under a key that lives only
// in memory, so no message text or attachment rests on disk in the clear.
package export
