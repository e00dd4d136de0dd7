// Package blob stores opaque, already-encrypted blobs in a local folder. It
// implements callvault.BlobStore; package blobtest holds the conformance suite
// that every BlobStore (this one, and S3 later) must pass.
//
// Layout: a blob with key "2026/11/0194.age" lives at DIR/2026/11/0194.age.
// Blobs being written live in DIR/.tmp/ under random names until Commit,
// which makes them durable (fsync of file and directories) and visible in one
// atomic step. A committed blob is never replaced: a second Commit to the same
// key fails with ECONFLICT, because a blob is evidence.
//
// Habits, as DO / DON'T pairs:
//
//   - DO return errors with context; DON'T log them (the caller decides).
//   - DO write to a temp file, fsync it, then link it into place and fsync the
//     directory; DON'T write in place.
//   - DO refuse to overwrite; DON'T use rename onto the final name, which
//     silently replaces an existing blob.
//   - DO validate every key before it becomes a path; DON'T trust that keys
//     made by callvault are always well formed.
package blob
