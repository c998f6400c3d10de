-- Console sessions, recorded so that signing out ends a session for good: the signed cookie carries
-- only a random id, and a session is valid while its row exists and has not expired. Only the id's
-- SHA-256 is stored, so a copy of this table cannot be replayed as a cookie. Expired rows are
-- deleted as new sessions start.
CREATE TABLE console_sessions (
  id_hash     text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
  -- The ADMIN_TOKENS name that signed in; NULL for the shared ADMIN_API_TOKEN.
  operator    text CHECK (length(operator) BETWEEN 1 AND 64),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
