// Package audit is the audit service: it writes the tamper-evident trail
// (group commit over a callvault.AuditStore), signs checkpoints of its head
// and sends them where the database administrator cannot reach, and verifies
// the stored trail against the chain and the checkpoints.
//
// # Writing: group commit
//
// Every recorded action waits for its audit event to be durable, so the cost
// of one fsync per event would cap the whole server at a few hundred actions
// a second. Log therefore queues events and a single writer goroutine hands
// everything pending (up to MaxBatch) to ONE AuditStore.AppendAudit call, then
// wakes every waiter with that call's result. While one batch is being
// written the next one accumulates, so under load a batch costs one
// transaction however many events it carries. If the store fails, every
// event in the batch fails with EUNAVAILABLE and the action it describes must
// not happen; the store computes the chain from its own head each time, so a
// failed batch leaves no trace and the next one links to the last durable
// entry.
//
// # The chain
//
// Each entry's Hash is SHA-256 over the previous entry's hash and the entry's
// frozen canonical encoding (callvault.CanonicalV1). The store computes
// Seq, PrevHash and Hash inside the transaction that stores the events. An
// edit, a deletion or a reordering of entries breaks the chain at that point.
//
// # Checkpoints
//
// The chain alone cannot stop someone with write access to the database from
// rebuilding it consistently after an edit, deleting its tail, or restoring
// an older backup: a rebuilt chain is internally perfect. Checkpointer
// therefore signs the head (seq, hash, time) with an Ed25519 key the
// database administrator does not hold, and exports the signed Checkpoint to
// places they cannot reach (an append-only file on another host, syslog,
// mail). The signed message is frozen; see Checkpoint.
//
// # What Verify proves, and what it cannot
//
// Verify walks the stored trail from its anchor and reports the first
// problem: an entry whose hash does not recompute (modified), a gap in the
// sequence (missing), an intact entry that does not link to its predecessor,
// renumbered entries or a sequence that goes backwards (reordered), a checkpoint beyond the stored
// head (truncated: tail cut off or an old backup restored), a checkpoint
// whose hash differs from the stored one (rewritten), and a checkpoint that
// does not verify with the public key (signature).
//
// A clean report proves that the stored entries up to the head are the ones
// that were written, in order, up to the last checkpoint it was given; that
// nothing was removed from the middle; and that the trail was not cut back
// before that checkpoint. It cannot prove:
//
//   - anything about entries written after the newest checkpoint: whoever
//     controls the database can change or drop them and rebuild the chain
//     (the window is the checkpoint interval);
//   - which entry of a rewritten stretch was changed: a checkpoint only says
//     that something at or before its seq differs;
//   - anything about entries before the anchor: pruning (the trail's own
//     retention) and deleting old entries while forging an anchor look the
//     same, except that checkpoints older than the anchor, and the audited
//     prune itself, record when it happened;
//   - the content of redacted entries: their reason and details were removed,
//     so their hash cannot be recomputed and only their position is checked.
//     Verify counts them; compare the count with the audited purges;
//   - that an event was recorded at all: an action carried out by someone
//     who bypasses the application leaves no entry to verify;
//   - anything, if the signing key was stolen: keep it off the database host.
//
// Verification needs the public key from somewhere the attacker could not
// change it (the key printed at set-up and kept with the checkpoints);
// checkpoints without a key are not trusted, and Verify then checks the chain
// alone and says so.
package audit
