export * from './config.ts';
export * from './shutdown.ts';
export * from './errors.ts';
export * from './keyset-cursor.ts';
export * from './money.ts';
export * from './db/database.ts';
export type * from './db/types.ts';
export * from './db/migrate.ts';
export * from './users/users.ts';
export * from './referral-codes/referral-codes.ts';
export * from './content/content.ts';
export * from './purchases/purchase.ts';
export * from './purchases/create-purchase.ts';
export * from './purchases/confirm-purchase.ts';
export * from './ledger/ledger.ts';
export * from './outbox/outbox.ts';
export * from './payouts/payout-gateway.ts';
export * from './payouts/payout-context.ts';
export * from './payouts/payout-result.ts';
export * from './payouts/process-referral-payouts.ts';
export { markReferralPayoutFailed } from './payouts/record-failure.ts';
export { LEASE_MARGIN_MS } from './payouts/settle-external.ts';
export * from './payouts/retry-failed-payouts.ts';
export * from './payouts/payout-queries.ts';
export * from './payouts/deployment-gateway.ts';
export {
  claimStuckQueued,
  countStuckQueued,
  REFERRAL_PAYOUT_DEAD_LETTER_QUEUE,
  STUCK_SWEEP_LOCK,
} from './payouts/stuck-queued.ts';
export * from './treasury/treasury-gate.ts';
export { BREAKER_FAILURES, PROBE_FIRST_MS, PROBE_MAX_MS } from './treasury/breaker-rule.ts';
export {
  readTreasuryGate,
  summarizeGate,
  TREASURY_GATE_STATES,
  type TreasurySummary,
  treasurySummary,
} from './treasury/gate-record.ts';
export * from './treasury/pause-payouts.ts';
export { classifyTreasuryStatus, transferFailureKind, type TransferFailureKind } from './treasury/transfer-failure.ts';
export * from './console-sessions/console-sessions.ts';
export * from './operations/write-off-referral-payouts.ts';
export * from './operations/search-referral-payouts.ts';
export * from './operations/payout-lag.ts';
export * from './reconciliation/treasury-books.ts';
export * from './reconciliation/reconcile.ts';
export * from './reconciliation/reconcile-window.ts';
export {
  DRIFT_KINDS,
  type DriftItem,
  type DriftKind,
  parseIdempotencyKey,
  type RecordedLevel,
} from './reconciliation/drift.ts';
export type { FixedLevel, ReconciliationReport } from './reconciliation/reconciliation-report.ts';
export {
  RECONCILED,
  recordTreasuryTransfer,
  type RecordedTransfer,
} from './reconciliation/record-treasury-transfer.ts';
export { latestReconciliation, type LatestReconciliation } from './reconciliation/reconciliation-queries.ts';
export * from './logging.ts';
export * from './metrics.ts';
export * from './treasury/transfer-slots.ts';
