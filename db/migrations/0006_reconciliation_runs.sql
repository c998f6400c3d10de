-- What each reconciliation found, whoever ran it (CLI, API, console): metrics and the console read
-- the latest run from here, so they agree across processes.
CREATE TABLE reconciliation_runs (
  id                   bigserial PRIMARY KEY,
  checked_at           timestamptz NOT NULL,
  finished_at          timestamptz NOT NULL DEFAULT now(),
  since                timestamptz NOT NULL,
  gateway              text NOT NULL,
  actor                text NOT NULL CHECK (actor IN ('api', 'worker', 'admin-api', 'cli', 'console')),
  treasury_transfers   bigint NOT NULL CHECK (treasury_transfers >= 0),
  recorded_levels      bigint NOT NULL CHECK (recorded_levels >= 0),
  unrecorded_transfers bigint NOT NULL CHECK (unrecorded_transfers >= 0),
  missing_at_treasury  bigint NOT NULL CHECK (missing_at_treasury >= 0),
  mismatches           bigint NOT NULL CHECK (mismatches >= 0),
  fixed                bigint NOT NULL CHECK (fixed >= 0),
  -- The report as answered (drift listed up to its cap), for the console.
  report               jsonb NOT NULL
);
CREATE INDEX reconciliation_runs_latest_idx ON reconciliation_runs (finished_at DESC, id DESC);
