-- One payout gateway per deployment. A level is settled only through the gateway that planned it,
-- and every process refuses to start when its PAYOUT_GATEWAY differs from the database's: an API
-- left on `ledger` beside an `http` worker would otherwise "repair" failed levels with ledger
-- references while the treasury never paid.

-- The gateway that planned each level. Levels recorded before this column are backfilled from what
-- each gateway leaves behind, which tells them apart without doubt:
--   * the ledger gateway records a level already paid, in the transaction that credits it, with the
--     credit's ledger transaction id as its reference; it never leaves a level pending, failed or
--     written off (its failures roll the whole transaction back);
--   * the http gateway records levels pending before it calls the treasury, and a paid level's
--     reference is the treasury's (its ledger mirror has a transaction id of its own).
ALTER TABLE referral_payouts ADD COLUMN gateway text CHECK (gateway IN ('ledger', 'http'));
UPDATE referral_payouts rp
   SET gateway = CASE
         WHEN rp.status = 'paid' AND EXISTS (
           SELECT 1 FROM ledger_entries l
            WHERE l.purchase_id = rp.purchase_id
              AND l.transaction_id::text = rp.reference
              AND l.account = 'referral_earnings'
              AND l.user_id = rp.beneficiary_id)
         THEN 'ledger'
         ELSE 'http'
       END;
ALTER TABLE referral_payouts ALTER COLUMN gateway SET NOT NULL;

-- The deployment's gateway: one row. NULL until the first API, worker or CLI process starts with a
-- PAYOUT_GATEWAY and records it; changed afterwards only by an explicit switch
-- (`manage-referral-payouts --set-gateway`), which refuses while any payout is left to settle.
CREATE TABLE payout_gateway_setting (
  id       boolean PRIMARY KEY DEFAULT true CHECK (id),
  gateway  text CHECK (gateway IN ('ledger', 'http')),
  set_at   timestamptz,
  -- Who recorded it: the process that started first ('api', 'worker', 'cli') or the operator who switched.
  set_by   text CHECK (length(set_by) <= 100),
  CHECK ((gateway IS NULL) = (set_at IS NULL AND set_by IS NULL))
);
-- A database that already paid levels keeps the gateway of the level planned last (if both appear,
-- that is the very mix-up this migration ends; the latest is what the deployment runs now). A
-- database without levels records the gateway of the first process that starts.
INSERT INTO payout_gateway_setting (gateway, set_at, set_by)
SELECT gw.gateway, CASE WHEN gw.gateway IS NULL THEN NULL ELSE now() END,
       CASE WHEN gw.gateway IS NULL THEN NULL ELSE 'migration 0010 (from existing payouts)' END
  FROM (SELECT (SELECT gateway FROM referral_payouts ORDER BY created_at DESC, purchase_id DESC, level DESC LIMIT 1)
               AS gateway) gw;
