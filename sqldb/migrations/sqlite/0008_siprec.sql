-- SIPREC recordings (see recorder/): a session cut short by a crash is
-- stored from its spool and marked interrupted; paused stretches (hold,
-- payment-card pauses) are kept as a JSON array of [from_ms, to_ms]
-- offsets from the start of the call.
ALTER TABLE recordings ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1));
ALTER TABLE recordings ADD COLUMN pauses TEXT NOT NULL DEFAULT '';
