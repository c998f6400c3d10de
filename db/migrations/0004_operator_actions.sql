-- Operator actions: write-off of failed payouts, the console as an actor, and who acted.

-- A level that will never be paid because an operator wrote the purchase off. Paid levels are never
-- rewritten: the money moved.
ALTER TABLE referral_payouts DROP CONSTRAINT referral_payouts_status_check;
ALTER TABLE referral_payouts ADD CONSTRAINT referral_payouts_status_check
  CHECK (status IN ('pending', 'paid', 'failed', 'written_off'));

ALTER TABLE referral_payout_events DROP CONSTRAINT referral_payout_events_actor_check;
ALTER TABLE referral_payout_events ADD CONSTRAINT referral_payout_events_actor_check
  CHECK (actor IN ('api', 'worker', 'admin-api', 'cli', 'console'));
ALTER TABLE treasury_gate_events DROP CONSTRAINT treasury_gate_events_actor_check;
ALTER TABLE treasury_gate_events ADD CONSTRAINT treasury_gate_events_actor_check
  CHECK (actor IN ('api', 'worker', 'admin-api', 'cli', 'console'));
-- operator: the name of the named admin token (ADMIN_TOKENS) or the OS user of the CLI, when known.
-- note: the operator's own words, e.g. why a purchase was written off.
ALTER TABLE referral_payout_events ADD COLUMN operator text CHECK (length(operator) <= 64);
ALTER TABLE referral_payout_events ADD COLUMN note text CHECK (length(note) <= 1000);

-- Search pages through confirmed purchases newest first; the console's lag chart reads the last
-- hour of completions.
CREATE INDEX purchases_confirmed_idx ON purchases (confirmed_at DESC, id DESC) WHERE confirmed_at IS NOT NULL;
CREATE INDEX purchases_completed_idx ON purchases (referral_payout_completed_at)
  WHERE referral_payout_status = 'completed';
