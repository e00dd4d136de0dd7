-- Second factors: TOTP and recovery codes (callvault.MFAService).
--
-- ALTER TABLE ADD COLUMN on these STRICT tables: the types are STRICT ones
-- (BLOB, INTEGER), a NOT NULL column has a constant default, and CHECK
-- constraints are tested against the existing rows.

-- The TOTP secret sealed by the vault (purpose "totp:<user id>"); NULL until
-- a secret is confirmed, and again after ResetMFA. MFA is enabled exactly
-- when it is set.
ALTER TABLE users ADD COLUMN mfa_secret BLOB CHECK (length(mfa_secret) > 0);

-- The last RFC 6238 time step used to sign in (or to confirm the secret).
-- UseTOTPStep only moves it forward, in one conditional UPDATE, so each
-- code works once, even for two requests at the same instant.
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER CHECK (mfa_last_step >= 0);

-- Set by MarkSessionMFA once the session passed its second factor; until
-- then the session only reaches the MFA pages.
ALTER TABLE sessions ADD COLUMN mfa_verified INTEGER NOT NULL DEFAULT 0 CHECK (mfa_verified IN (0, 1));

-- Single-use recovery codes, as SHA-256 hex of the normalised code. Used
-- codes are kept (used_at) until SetRecoveryCodes or ResetMFA replaces
-- them. UNIQUE serves UseRecoveryCode and "codes of this user"; cascade.
CREATE TABLE recovery_codes (
	id        INTEGER PRIMARY KEY,
	user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	code_hash TEXT    NOT NULL CHECK (length(code_hash) = 64 AND code_hash NOT GLOB '*[^0-9a-f]*'),
	used_at   INTEGER,
	UNIQUE (user_id, code_hash)
) STRICT;
