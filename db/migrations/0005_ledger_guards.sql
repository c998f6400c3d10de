-- The ledger's guarantees held by the database itself, whatever code path writes to it.

-- TRUNCATE fires no row trigger, so the append-only guard of UPDATE and DELETE did not cover it.
CREATE TRIGGER ledger_entries_no_truncate
  BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- One referral credit per (purchase, beneficiary). A purchase's direct and grand referrers are
-- different users (user_referrals' checks), so this is one credit per level: a processor that
-- credits a level another one already credited fails instead of paying twice.
CREATE UNIQUE INDEX ledger_entries_one_referral_credit
  ON ledger_entries (purchase_id, user_id)
  WHERE account = 'referral_earnings' AND amount > 0;
