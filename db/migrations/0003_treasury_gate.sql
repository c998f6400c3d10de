-- The treasury gate: one row that every worker, the API and the CLI read, so all of them agree on
-- whether transfers may go to the treasury.
--   closed     transfers go through;
--   open       the circuit breaker tripped after a run of transient treasury failures: nothing is
--              sent until next_probe_at, when one transfer may probe the treasury;
--   half_open  that probe is in flight, held by probe_owner until probe_until;
--   paused     an operator stopped payouts (paused_by, paused_reason, since) until resumed.
CREATE TABLE treasury_gate (
  id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
  state                 text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open', 'paused')),
  since                 timestamptz NOT NULL DEFAULT now(),
  -- Transient failures since the last answer from the treasury, across all processes.
  consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  last_error            text,
  last_error_at         timestamptz,
  probe_interval_ms     integer CHECK (probe_interval_ms > 0),
  next_probe_at         timestamptz,
  probe_owner           uuid,
  probe_until           timestamptz,
  paused_by             text,
  paused_reason         text,
  CHECK ((state IN ('open', 'half_open')) = (probe_interval_ms IS NOT NULL AND next_probe_at IS NOT NULL)),
  CHECK ((state = 'half_open') = (probe_owner IS NOT NULL AND probe_until IS NOT NULL)),
  CHECK ((state = 'paused') = (paused_by IS NOT NULL AND paused_reason IS NOT NULL))
);
INSERT INTO treasury_gate DEFAULT VALUES;

-- Append-only history of the gate: who paused or resumed and why, when the breaker opened and closed.
CREATE TABLE treasury_gate_events (
  id          bigserial PRIMARY KEY,
  from_state  text NOT NULL,
  to_state    text NOT NULL CHECK (to_state IN ('closed', 'open', 'half_open', 'paused')),
  actor       text NOT NULL CHECK (actor IN ('api', 'worker', 'admin-api', 'cli')),
  operator    text,
  reason      text,
  error       text,
  at          timestamptz NOT NULL DEFAULT now()
);
