-- The tamper-evident audit trail (see sqldb/audit.go and callvault.AuditEvent).
--
-- Each row is one entry of a hash chain: hash = SHA-256(prev_hash ||
-- CanonicalV1(entry)). seq is assigned by AppendAudit from the head of the
-- chain inside the write transaction that stores the entry (it is the rowid,
-- but always given explicitly: never left to SQLite to choose). No triggers:
-- the chain, not the database, is what proves the trail intact.
CREATE TABLE audit_events (
	seq         INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL,                  -- unix ms UTC
	actor_kind  TEXT    NOT NULL,
	actor_id    TEXT    NOT NULL DEFAULT '',
	actor_name  TEXT    NOT NULL DEFAULT '',
	actor_role  TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL,
	target_type TEXT    NOT NULL DEFAULT '',
	target_id   TEXT    NOT NULL DEFAULT '',
	academy_id  INTEGER NOT NULL DEFAULT 0,        -- 0: about no academy; no FK, entries outlive academies
	outcome     TEXT    NOT NULL,
	client_addr TEXT    NOT NULL DEFAULT '',
	reason      TEXT    NOT NULL DEFAULT '',
	details     TEXT    NOT NULL DEFAULT '{}',     -- JSON object, sorted keys
	prev_hash   TEXT    NOT NULL,
	hash        TEXT    NOT NULL,
	redacted    INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1))
) STRICT;

-- Where the stored chain starts once old entries have been pruned: the seq
-- and hash of the last deleted entry. At most one row.
CREATE TABLE audit_anchor (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	seq       INTEGER NOT NULL,
	hash      TEXT    NOT NULL,
	pruned_at INTEGER NOT NULL                     -- unix ms UTC
) STRICT;

-- FindAuditEvents reads newest first (ORDER BY seq DESC). Each filter has an
-- index ending in seq, so an equality filter yields its rows already in
-- page order and the page stops after LIMIT rows. Comparisons are bytewise
-- (BINARY; PostgreSQL: COLLATE "C"), which the action prefix range needs.
CREATE INDEX audit_events_action ON audit_events (action, seq);         -- Action, exact or "prefix."
CREATE INDEX audit_events_actor ON audit_events (actor_name, seq);      -- ActorName
CREATE INDEX audit_events_target ON audit_events (target_type, target_id, seq); -- TargetType+ID; RedactAudit
CREATE INDEX audit_events_time ON audit_events (time, seq);             -- From/To
-- No index on academy_id: a principal's scope is "academy_id IN (theirs) OR
-- caused by them", which no single index answers. Their pages walk seq
-- backwards from the primary key and stop after LIMIT matches (reading about
-- LIMIT / their academies' share of the trail), cheaper than collecting and
-- sorting every entry of their academies. Other filters use their indexes.
