-- Retention, legal holds and purge (see sqldb/retention.go, sqldb/hold.go,
-- sqldb/purge.go and the retention package).
--
-- A recording's retain_until is set at ingest from the most specific rule
-- (callvault.RetentionPolicy.RuleFor) and recomputed in the transaction that
-- changes a rule. A purge run deletes recordings past retain_until that no
-- active hold covers, in two steps that survive a crash: the receipts are
-- written and the recordings queued in one transaction (purge_queue), then
-- blobs are deleted, then rows and queue entries in another.

-- Kinds of call with their own retention, recognised by number or extension
-- ranges (JSON arrays of callvault.Range). Few rows: matched in Go.
CREATE TABLE categories (
	id         INTEGER PRIMARY KEY,
	slug       TEXT    NOT NULL UNIQUE,
	name       TEXT    NOT NULL,
	numbers    TEXT    NOT NULL DEFAULT '[]',
	extensions TEXT    NOT NULL DEFAULT '[]',
	created_at INTEGER NOT NULL
) STRICT;

ALTER TABLE recordings ADD COLUMN category TEXT NOT NULL DEFAULT '';

-- Purge candidates in retain_until order, keyset-paginated.
CREATE INDEX recordings_retain ON recordings (retain_until, id);
-- "Does any recording still use this key epoch?" before crypto-shredding it.
CREATE INDEX recordings_epoch ON recordings (key_epoch);

-- academy_id 0 and category '' mean "every". The default (0, '') always
-- exists. Months are checked here too, so no path stores 0 or negative.
CREATE TABLE retention_rules (
	academy_id INTEGER NOT NULL DEFAULT 0,
	category   TEXT    NOT NULL DEFAULT '',
	months     INTEGER NOT NULL CHECK (months BETWEEN 1 AND 120),
	updated_at INTEGER NOT NULL,
	updated_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (academy_id, category)
) STRICT, WITHOUT ROWID;

INSERT INTO retention_rules (academy_id, category, months, updated_at, updated_by)
VALUES (0, '', 12, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'install');

CREATE TABLE holds (
	id           INTEGER PRIMARY KEY,
	reason       TEXT    NOT NULL CHECK (reason <> ''),
	title        TEXT    NOT NULL CHECK (title <> ''),
	reference    TEXT    NOT NULL DEFAULT '',
	academy_id   INTEGER REFERENCES academies (id), -- NULL: trust-wide
	filter       TEXT,                              -- JSON callvault.HoldFilter, NULL: none
	owner_id     INTEGER NOT NULL REFERENCES users (id),
	review_at    INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	released_at  INTEGER,
	released_by  INTEGER REFERENCES users (id),
	release_note TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Active holds (every ingest checks the saved searches of these).
CREATE INDEX holds_active ON holds (released_at, id);

CREATE TABLE hold_recordings (
	hold_id      INTEGER NOT NULL REFERENCES holds (id) ON DELETE CASCADE,
	recording_id TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
	added_at     INTEGER NOT NULL,
	PRIMARY KEY (hold_id, recording_id)
) STRICT, WITHOUT ROWID;

-- "Is this recording held?" for every purge candidate and recording page.
CREATE INDEX hold_recordings_recording ON hold_recordings (recording_id, hold_id);

-- Recordings whose receipt is written and whose deletion must finish. A
-- row here is never un-queued: a restart resumes it.
CREATE TABLE purge_queue (
	recording_id TEXT    PRIMARY KEY, -- no foreign key: the row and its entry go in one transaction
	run_id       TEXT    NOT NULL,
	blob_key     TEXT    NOT NULL,
	queued_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
