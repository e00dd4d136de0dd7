-- Listen requests and grants (see sqldb/grant.go and callvault.GrantService).
--
-- Recordings are heard only when the CEO or the academy's Principal decides
-- so: a listen request names recordings and listeners; approving it creates
-- one grant per listener, read-only and stream-only, that expires by itself
-- at until_ms (no job: every check compares with the current time). A
-- break-glass grant is opened by an admin or the DPO for themselves in an
-- emergency, with no request, and is ratified afterwards.
--
-- The limits of the policy that must never be broken are also CHECKs here,
-- so that no code path can store a grant longer than seven days, a
-- break-glass grant longer than a day, or a self-approved request.
-- Purposes are validated by the code (callvault.ValidPurpose), not by a
-- CHECK: the list is policy vocabulary, and widening a CHECK in SQLite means
-- rebuilding the table.

CREATE TABLE listen_requests (
	id            INTEGER PRIMARY KEY,
	requester_id  INTEGER NOT NULL REFERENCES users (id),
	purpose       TEXT    NOT NULL CHECK (purpose <> ''),
	purpose_text  TEXT    NOT NULL DEFAULT '',
	justification TEXT    NOT NULL,
	-- callvault.MinGrantDuration .. callvault.MaxGrantDuration
	duration_ms   INTEGER NOT NULL CHECK (duration_ms BETWEEN 60000 AND 604800000),
	state         TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'declined')),
	created_at    INTEGER NOT NULL,
	decider_id    INTEGER REFERENCES users (id),
	decided_at    INTEGER,
	decision_note TEXT    NOT NULL DEFAULT '',
	-- Decided exactly when it has a decider and a time; never by the
	-- person who asked.
	CHECK ((state = 'pending') = (decider_id IS NULL) AND (state = 'pending') = (decided_at IS NULL)),
	CHECK (decider_id IS NULL OR decider_id <> requester_id)
) STRICT;

-- RequestFilter.State and AwaitingDecision (state = 'pending'), newest first.
CREATE INDEX listen_requests_state ON listen_requests (state, id);
-- RequestFilter.Mine and a principal's scope ("requests they made").
CREATE INDEX listen_requests_requester ON listen_requests (requester_id, id);

-- The recordings of a request. The primary key serves "recordings of these
-- requests" (reads, scope and AwaitingDecision: every recording's academy).
CREATE TABLE listen_request_recordings (
	request_id   INTEGER NOT NULL REFERENCES listen_requests (id) ON DELETE CASCADE,
	recording_id TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
	PRIMARY KEY (request_id, recording_id)
) STRICT, WITHOUT ROWID;

-- Deleting a recording (retention) cascades here without a table scan.
CREATE INDEX listen_request_recordings_recording ON listen_request_recordings (recording_id);

-- The people a request would let listen.
CREATE TABLE listen_request_listeners (
	request_id INTEGER NOT NULL REFERENCES listen_requests (id) ON DELETE CASCADE,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	PRIMARY KEY (request_id, user_id)
) STRICT, WITHOUT ROWID;

-- Scope: the requests naming the actor as a listener.
CREATE INDEX listen_request_listeners_user ON listen_request_listeners (user_id);

CREATE TABLE grants (
	id            INTEGER PRIMARY KEY,
	request_id    INTEGER REFERENCES listen_requests (id), -- NULL for break-glass
	listener_id   INTEGER NOT NULL REFERENCES users (id),
	from_ms       INTEGER NOT NULL,                          -- unix ms UTC, inclusive
	until_ms      INTEGER NOT NULL,                          -- unix ms UTC, exclusive
	granted_by    INTEGER NOT NULL REFERENCES users (id),
	revoked_at    INTEGER,
	revoked_by    INTEGER REFERENCES users (id),
	revoke_reason TEXT    NOT NULL DEFAULT '',
	break_glass   INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1)),
	reason        TEXT    NOT NULL DEFAULT '',               -- break-glass: why
	ratified_by   INTEGER REFERENCES users (id),             -- break-glass only
	ratified_at   INTEGER,
	ratify_note   TEXT    NOT NULL DEFAULT '',
	-- At most callvault.MaxGrantDuration; break-glass at most
	-- callvault.BreakGlassPeriod, with a reason and no request.
	CHECK (until_ms > from_ms AND until_ms - from_ms <= 604800000),
	CHECK ((break_glass = 1) = (request_id IS NULL)),
	CHECK (break_glass = 0 OR (reason <> '' AND until_ms - from_ms <= 86400000)),
	CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
	CHECK ((ratified_at IS NULL) = (ratified_by IS NULL)),
	CHECK (ratified_by IS NULL OR (break_glass = 1 AND ratified_by <> listener_id)),
	UNIQUE (id, listener_id) -- the parent key of grant_recordings' copy of the listener
) STRICT;

-- A user's grants: GrantFilter.ListenerID, everyone's own grants, and the
-- active grants of a user in recording scope (listener_id = ? AND until_ms
-- > now: only the unexpired tail is read).
CREATE INDEX grants_listener ON grants (listener_id, until_ms);
-- GrantFilter.ActiveAt without a listener ("who may listen now"): the
-- unexpired tail of every grant.
CREATE INDEX grants_until ON grants (until_ms);
-- GrantFilter.BreakGlass: the few emergency grants, for ratification.
CREATE INDEX grants_break_glass ON grants (id) WHERE break_glass = 1;

-- The recordings of a grant, with the grant's listener copied in (a grant's
-- listener never changes; the foreign key keeps the copy true). The primary
-- key is the hot path, ActiveGrant on every audio range request: this
-- recording and this listener lead straight to their few grants (usually
-- none or one), each then read by id to check times and revocation. It also
-- serves GrantFilter.RecordingID and the cascade when a recording is
-- deleted.
CREATE TABLE grant_recordings (
	recording_id TEXT    NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
	listener_id  INTEGER NOT NULL,
	grant_id     INTEGER NOT NULL,
	PRIMARY KEY (recording_id, listener_id, grant_id),
	FOREIGN KEY (grant_id, listener_id) REFERENCES grants (id, listener_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The recordings of a grant (reads; a user's granted recordings in
-- recording scope), and the foreign key's child index. Covering: an index
-- of a WITHOUT ROWID table carries the primary key.
CREATE INDEX grant_recordings_grant ON grant_recordings (grant_id, listener_id);
