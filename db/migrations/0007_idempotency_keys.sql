-- Idempotency keys kept as Stripe keeps them: the first response given under a key, replayed as it
-- was for as long as the key is kept (IDEMPOTENCY_KEY_TTL_HOURS, pruned by the worker); after that
-- the key may be used again. purchases.idempotency_key stays as the record of the key a purchase was
-- created with, and so is no longer unique.
CREATE TABLE idempotency_keys (
  key              text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
  -- Hash of the normalised request (ids lower-cased) that first used the key.
  fingerprint      text NOT NULL,
  response_status  integer NOT NULL CHECK (response_status BETWEEN 200 AND 599),
  response_body    jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Keys in use before this table: their first response was the pending purchase they created.
INSERT INTO idempotency_keys (key, fingerprint, response_status, response_body, created_at)
SELECT idempotency_key, idempotency_fingerprint, 201,
       jsonb_build_object(
         'id', id, 'buyerId', buyer_id, 'contentId', content_id, 'price', price, 'currency', currency,
         'status', 'pending', 'paymentReference', NULL, 'referralPayoutStatus', NULL, 'referralPayoutReason', NULL,
         'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'confirmedAt', NULL),
       created_at
  FROM purchases
 WHERE idempotency_key IS NOT NULL;

DROP INDEX purchases_idempotency_key_key;
CREATE INDEX purchases_idempotency_key_idx ON purchases (idempotency_key) WHERE idempotency_key IS NOT NULL;
