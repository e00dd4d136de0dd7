-- The first schema of callvault.
--
-- Conventions: timestamps are INTEGER unix milliseconds UTC (NULL = unset);
-- booleans are INTEGER 0/1; tables are STRICT so a wrong type fails loudly.
-- Every index below names the query it serves.

CREATE TABLE academies (
	id         INTEGER PRIMARY KEY,
	slug       TEXT    NOT NULL UNIQUE,  -- FindAcademyBySlug
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- Inclusive ranges of equal-length numbers, compared as strings (see
-- callvault.Range). The primary key orders them for display and serves
-- "ranges of these academies".
CREATE TABLE academy_ranges (
	academy_id INTEGER NOT NULL REFERENCES academies (id) ON DELETE CASCADE,
	kind       TEXT    NOT NULL CHECK (kind IN ('number', 'extension')),
	first      TEXT    NOT NULL,
	last       TEXT    NOT NULL,
	PRIMARY KEY (academy_id, kind, first),
	CHECK (length(first) = length(last) AND first <= last)
) STRICT, WITHOUT ROWID;

INSERT INTO academies (slug, name, created_at)
VALUES ('unassigned', 'Unassigned', CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE sources (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,  -- FindSourceByName
	kind       TEXT    NOT NULL CHECK (kind IN ('siprec', 'api', 'import')),
	token_hash TEXT    NOT NULL UNIQUE,  -- FindSourceByTokenHash, every ingest request
	disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE recordings (
	id           TEXT    PRIMARY KEY,    -- UUIDv7
	academy_id   INTEGER NOT NULL REFERENCES academies (id),
	source_id    INTEGER REFERENCES sources (id),
	source_kind  TEXT    NOT NULL CHECK (source_kind IN ('siprec', 'api', 'import')),
	source_ref   TEXT    NOT NULL,
	started_at   INTEGER NOT NULL,
	ended_at     INTEGER,
	duration_ms  INTEGER NOT NULL CHECK (duration_ms >= 0),
	direction    TEXT    NOT NULL CHECK (direction IN ('', 'inbound', 'outbound', 'internal')),
	format       TEXT    NOT NULL,
	codec        TEXT    NOT NULL,
	sample_rate  INTEGER NOT NULL,
	channels     INTEGER NOT NULL,
	data_offset  INTEGER NOT NULL,
	data_size    INTEGER NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT    NOT NULL,
	blob_key     TEXT    NOT NULL,
	key_epoch    TEXT    NOT NULL,
	retain_until INTEGER,
	state        TEXT    NOT NULL CHECK (state IN ('stored', 'missing')),
	created_at   INTEGER NOT NULL,
	-- FindRecordingBySourceRef; makes re-delivered ingest idempotent.
	-- Recordings without a source (NULL) are not constrained.
	UNIQUE (source_id, source_ref),
	-- Two rows sharing one blob would let retention of one destroy the
	-- other's audio.
	UNIQUE (blob_key)
) STRICT;

-- Search without a participant filter: newest first by (started_at, id),
-- keyset pagination with a row-value bound, date range on the same column.
CREATE INDEX recordings_started ON recordings (started_at, id);
-- Principals' searches and the academy filter: scope first, then time.
CREATE INDEX recordings_academy_started ON recordings (academy_id, started_at, id);

-- started_at is a copy of the recording's (recordings are never re-timed) so
-- that number + date searches are answered from one index without touching
-- recordings until the page is known.
CREATE TABLE participants (
	recording_id TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
	idx          INTEGER NOT NULL,        -- order within the recording
	number       TEXT    NOT NULL DEFAULT '',
	number_rev   TEXT    NOT NULL DEFAULT '', -- digits of number, reversed
	extension    TEXT    NOT NULL DEFAULT '',
	name         TEXT    NOT NULL DEFAULT '',
	side         TEXT    NOT NULL CHECK (side IN ('external', 'staff')),
	started_at   INTEGER NOT NULL,
	PRIMARY KEY (recording_id, idx)       -- participants of a page; cascade
) STRICT, WITHOUT ROWID;

-- Number search. Trailing digits become a prefix of number_rev, so both a
-- suffix ("71838750") and a full number are range scans of this index, with
-- the date range checked from the index entry. Partial: staff legs often
-- carry only an extension. Queries repeat "number_rev <> ''" so SQLite can
-- use the partial index. (PostgreSQL: COLLATE "C" on number_rev.)
CREATE INDEX participants_number ON participants (number_rev, started_at, recording_id)
	WHERE number_rev <> '';
-- Extension search (exact), same shape.
CREATE INDEX participants_extension ON participants (extension, started_at, recording_id)
	WHERE extension <> '';

CREATE TABLE users (
	id                   INTEGER PRIMARY KEY,
	-- Stored lower-case, so UNIQUE is case-insensitive; FindUserByLogin.
	login                TEXT    NOT NULL UNIQUE CHECK (login = lower(login)),
	name                 TEXT    NOT NULL DEFAULT '',
	email                TEXT    NOT NULL DEFAULT '',
	role                 TEXT    NOT NULL CHECK (role IN ('admin', 'ceo', 'principal', 'dpo', 'listener')),
	password_hash        TEXT    NOT NULL DEFAULT '',
	must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
	disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at           INTEGER NOT NULL
) STRICT;

-- A user's academy scope. The primary key serves "academies of this user".
CREATE TABLE user_academies (
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	academy_id INTEGER NOT NULL REFERENCES academies (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, academy_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
	token_hash TEXT    PRIMARY KEY,       -- FindSession, every request
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

-- DisableUser deletes a user's sessions.
CREATE INDEX sessions_user ON sessions (user_id);
