-- Passkeys: WebAuthn credentials as a second factor (callvault.PasskeyService).
--
-- A user with a passkey has MFA enabled (userColumns); ResetMFA removes
-- them with the TOTP secret. The UNIQUE credential ID serves
-- FindPasskeyByCredentialID and keeps one credential to one account; the
-- (user_id, id) index serves FindPasskeys and "does this user have one".
CREATE TABLE passkeys (
	id            INTEGER PRIMARY KEY,
	user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	credential_id BLOB    NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
	public_key    BLOB    NOT NULL CHECK (length(public_key) > 0),
	sign_count    INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
	aaguid        BLOB,
	flags         INTEGER NOT NULL DEFAULT 0 CHECK (flags BETWEEN 0 AND 255),
	transports    TEXT    NOT NULL DEFAULT '',  -- comma-separated
	name          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	last_used_at  INTEGER
) STRICT;

CREATE INDEX passkeys_user ON passkeys (user_id, id);
