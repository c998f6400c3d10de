-- Referral payouts: base schema.
-- Money is integer minor units (bigint); rates are basis points; currencies are ISO-4217 codes.

CREATE TABLE users (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  handle      text NOT NULL CHECK (handle ~ '^[A-Za-z0-9_.-]{1,64}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_handle_key ON users (lower(handle));

CREATE TABLE referral_codes (
  code            text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{3,32}$'),
  owner_id        uuid NOT NULL REFERENCES users (id),
  direct_rate_bps integer NOT NULL DEFAULT 1000 CHECK (direct_rate_bps BETWEEN 0 AND 10000),
  grand_rate_bps  integer NOT NULL DEFAULT 500 CHECK (grand_rate_bps BETWEEN 0 AND 10000),
  active          boolean NOT NULL DEFAULT true,
  signup_count    integer NOT NULL DEFAULT 0 CHECK (signup_count >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (direct_rate_bps + grand_rate_bps <= 10000)
);
-- Codes are unique case-insensitively; the stored spelling is the one the owner chose.
CREATE UNIQUE INDEX referral_codes_code_lower_key ON referral_codes (lower(code));
CREATE INDEX referral_codes_owner_idx ON referral_codes (owner_id);

-- The chain captured at sign-up. It never changes afterwards, so a later code change cannot
-- rewrite who referred whom.
CREATE TABLE user_referrals (
  user_id            uuid PRIMARY KEY REFERENCES users (id),
  code               text NOT NULL REFERENCES referral_codes (code),
  direct_referrer_id uuid NOT NULL REFERENCES users (id),
  grand_referrer_id  uuid REFERENCES users (id),
  created_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (direct_referrer_id <> user_id),
  CHECK (grand_referrer_id IS NULL OR (grand_referrer_id <> user_id AND grand_referrer_id <> direct_referrer_id))
);
CREATE INDEX user_referrals_direct_idx ON user_referrals (direct_referrer_id);

CREATE TABLE content (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  creator_id  uuid NOT NULL REFERENCES users (id),
  title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  price       bigint NOT NULL CHECK (price >= 0),
  currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE purchases (
  id                            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  buyer_id                      uuid NOT NULL REFERENCES users (id),
  content_id                    uuid NOT NULL REFERENCES content (id),
  price                         bigint NOT NULL CHECK (price >= 0),
  currency                      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status                        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed')),
  payment_reference             text,
  idempotency_key               text,
  -- Hash of the request that first used idempotency_key; a reuse with another body is refused.
  idempotency_fingerprint       text,
  created_at                    timestamptz NOT NULL DEFAULT now(),
  confirmed_at                  timestamptz,
  -- The platform's fee taken at confirm; referral payouts of the purchase never exceed it.
  platform_fee                  bigint CHECK (platform_fee >= 0),
  referral_payout_status        text CHECK (referral_payout_status IN ('queued', 'completed', 'failed', 'not_applicable')),
  referral_payout_reason        text,
  referral_payout_attempts      integer NOT NULL DEFAULT 0 CHECK (referral_payout_attempts >= 0),
  referral_payout_last_error    text,
  referral_payout_queued_at     timestamptz,
  referral_payout_completed_at  timestamptz,
  referral_payout_failed_at     timestamptz,
  -- Lease held while a network transfer is in flight (no transaction stays open across it).
  referral_payout_lease_owner   uuid,
  referral_payout_lease_until   timestamptz,
  CHECK ((status = 'pending') = (confirmed_at IS NULL)),
  CHECK ((status = 'pending') = (referral_payout_status IS NULL)),
  CHECK ((status = 'pending') = (payment_reference IS NULL)),
  CHECK ((status = 'pending') = (platform_fee IS NULL)),
  CHECK ((idempotency_key IS NULL) = (idempotency_fingerprint IS NULL))
);
CREATE UNIQUE INDEX purchases_idempotency_key_key ON purchases (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX purchases_buyer_idx ON purchases (buyer_id);
CREATE INDEX purchases_failed_idx ON purchases (referral_payout_failed_at DESC, id DESC)
  WHERE referral_payout_status = 'failed';
CREATE INDEX purchases_queued_idx ON purchases (referral_payout_queued_at)
  WHERE referral_payout_status = 'queued';

-- Double entry: every movement (transaction_id) is a set of rows inserted by one statement whose
-- amounts sum to zero; balances are sums over this table.
CREATE TABLE ledger_entries (
  id              bigserial PRIMARY KEY,
  transaction_id  uuid NOT NULL,
  account         text NOT NULL CHECK (account IN ('buyer_payment_clearing', 'creator_earnings', 'platform_treasury', 'referral_earnings')),
  user_id         uuid REFERENCES users (id),
  amount          bigint NOT NULL,
  currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  purchase_id     uuid REFERENCES purchases (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((account IN ('creator_earnings', 'referral_earnings')) = (user_id IS NOT NULL))
);
CREATE INDEX ledger_entries_purchase_idx ON ledger_entries (purchase_id);
CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, account) WHERE user_id IS NOT NULL;

CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unbalanced uuid;
BEGIN
  SELECT e.transaction_id INTO unbalanced
    FROM ledger_entries e
   WHERE e.transaction_id IN (SELECT DISTINCT n.transaction_id FROM new_rows n)
   GROUP BY e.transaction_id, e.currency
  HAVING sum(e.amount) <> 0
   LIMIT 1;
  IF unbalanced IS NOT NULL THEN
    RAISE EXCEPTION 'ledger transaction % does not sum to zero', unbalanced
      USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_balanced
  AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger entries are append-only' USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledger_entries_append_only
  BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- One row per (purchase, level): the primary key is what forbids a double payout.
CREATE TABLE referral_payouts (
  purchase_id     uuid NOT NULL REFERENCES purchases (id),
  level           text NOT NULL CHECK (level IN ('direct', 'grand')),
  beneficiary_id  uuid NOT NULL REFERENCES users (id),
  rate_bps        integer NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'failed')),
  reference       text,
  paid_at         timestamptz,
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (purchase_id, level),
  CHECK ((status = 'paid') = (paid_at IS NOT NULL AND reference IS NOT NULL))
);
CREATE INDEX referral_payouts_beneficiary_idx ON referral_payouts (beneficiary_id);

CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  topic         text NOT NULL,
  aggregate_id  uuid NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  UNIQUE (topic, aggregate_id)
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE referral_payout_events (
  id           bigserial PRIMARY KEY,
  purchase_id  uuid NOT NULL REFERENCES purchases (id),
  from_status  text,
  to_status    text NOT NULL,
  actor        text NOT NULL CHECK (actor IN ('api', 'worker', 'admin-api', 'cli')),
  attempt      integer NOT NULL DEFAULT 0,
  error        text,
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referral_payout_events_purchase_idx ON referral_payout_events (purchase_id, id);
