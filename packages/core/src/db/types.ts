import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Timestamps come back as Date; inserts may pass a Date or let the default apply. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export type PurchaseStatus = 'pending' | 'confirmed';
export type ReferralPayoutStatus = 'queued' | 'completed' | 'failed' | 'not_applicable';
export type PayoutLevel = 'direct' | 'grand';
export type LevelPayoutStatus = 'pending' | 'paid' | 'failed' | 'written_off';
export type LedgerAccount = 'buyer_payment_clearing' | 'creator_earnings' | 'platform_treasury' | 'referral_earnings';
export type Actor = 'api' | 'worker' | 'admin-api' | 'cli' | 'console';

export interface UsersTable {
  id: Generated<string>;
  handle: string;
  created_at: Timestamp;
}

export interface ReferralCodesTable {
  code: string;
  owner_id: string;
  direct_rate_bps: Generated<number>;
  grand_rate_bps: Generated<number>;
  active: Generated<boolean>;
  signup_count: Generated<number>;
  created_at: Timestamp;
}

export interface UserReferralsTable {
  user_id: string;
  code: string;
  direct_referrer_id: string;
  grand_referrer_id: string | null;
  created_at: Timestamp;
}

export interface ContentTable {
  id: Generated<string>;
  creator_id: string;
  title: string;
  price: number;
  currency: string;
  created_at: Timestamp;
}

export interface PurchasesTable {
  id: Generated<string>;
  buyer_id: string;
  content_id: string;
  price: number;
  currency: string;
  status: Generated<PurchaseStatus>;
  payment_reference: string | null;
  idempotency_key: string | null;
  idempotency_fingerprint: string | null;
  created_at: Timestamp;
  confirmed_at: NullableTimestamp;
  platform_fee: number | null;
  referral_payout_status: ReferralPayoutStatus | null;
  referral_payout_reason: string | null;
  referral_payout_attempts: Generated<number>;
  referral_payout_last_error: string | null;
  referral_payout_queued_at: NullableTimestamp;
  referral_payout_completed_at: NullableTimestamp;
  referral_payout_failed_at: NullableTimestamp;
  referral_payout_lease_owner: string | null;
  referral_payout_lease_until: NullableTimestamp;
}

export interface LedgerEntriesTable {
  id: Generated<number>;
  transaction_id: string;
  account: LedgerAccount;
  user_id: string | null;
  amount: number;
  currency: string;
  purchase_id: string | null;
  created_at: Timestamp;
}

export interface ReferralPayoutsTable {
  purchase_id: string;
  level: PayoutLevel;
  beneficiary_id: string;
  rate_bps: number;
  amount: number;
  currency: string;
  status: Generated<LevelPayoutStatus>;
  reference: string | null;
  paid_at: NullableTimestamp;
  error: string | null;
  /** The gateway that planned the level; it alone may settle it. */
  gateway: PayoutGatewayName;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type PayoutGatewayName = 'ledger' | 'http';

/** The deployment's payout gateway: one row, NULL until the first process records its own. */
export interface PayoutGatewaySettingTable {
  id: Generated<boolean>;
  gateway: PayoutGatewayName | null;
  set_at: NullableTimestamp;
  set_by: string | null;
}

export interface OutboxTable {
  id: Generated<number>;
  topic: string;
  aggregate_id: string;
  payload: ColumnType<unknown, string, string>;
  created_at: Timestamp;
  published_at: NullableTimestamp;
}

export interface ReferralPayoutEventsTable {
  id: Generated<number>;
  purchase_id: string;
  from_status: ReferralPayoutStatus | null;
  to_status: ReferralPayoutStatus;
  actor: Actor;
  attempt: Generated<number>;
  error: string | null;
  operator: ColumnType<string | null, string | null | undefined, string | null>;
  note: ColumnType<string | null, string | null | undefined, string | null>;
  at: Timestamp;
}

export type TreasuryGateState = 'closed' | 'open' | 'half_open' | 'paused';

export interface TreasuryGateTable {
  id: Generated<boolean>;
  state: TreasuryGateState;
  since: Timestamp;
  consecutive_failures: number;
  last_error: string | null;
  last_error_at: NullableTimestamp;
  probe_interval_ms: number | null;
  next_probe_at: NullableTimestamp;
  probe_owner: string | null;
  probe_until: NullableTimestamp;
  paused_by: string | null;
  paused_reason: string | null;
}

export interface TreasuryGateEventsTable {
  id: Generated<number>;
  from_state: TreasuryGateState;
  to_state: TreasuryGateState;
  actor: Actor;
  operator: string | null;
  reason: string | null;
  error: string | null;
  at: Timestamp;
}

export interface IdempotencyKeysTable {
  key: string;
  fingerprint: string;
  response_status: number;
  response_body: unknown;
  created_at: Generated<Date>;
}

export interface ConsoleSessionsTable {
  id_hash: string;
  operator: string | null;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

export interface ReconciliationRunsTable {
  id: Generated<number>;
  checked_at: Timestamp;
  finished_at: Timestamp;
  since: Timestamp;
  gateway: string;
  actor: Actor;
  treasury_transfers: number;
  recorded_levels: number;
  unrecorded_transfers: number;
  missing_at_treasury: number;
  mismatches: number;
  fixed: number;
  report: ColumnType<unknown, string, string>;
}

export interface DB {
  users: UsersTable;
  referral_codes: ReferralCodesTable;
  user_referrals: UserReferralsTable;
  content: ContentTable;
  purchases: PurchasesTable;
  ledger_entries: LedgerEntriesTable;
  referral_payouts: ReferralPayoutsTable;
  outbox: OutboxTable;
  referral_payout_events: ReferralPayoutEventsTable;
  treasury_gate: TreasuryGateTable;
  treasury_gate_events: TreasuryGateEventsTable;
  reconciliation_runs: ReconciliationRunsTable;
  idempotency_keys: IdempotencyKeysTable;
  console_sessions: ConsoleSessionsTable;
  payout_gateway_setting: PayoutGatewaySettingTable;
}

export type PurchaseRow = Selectable<PurchasesTable>;
export type NewPurchase = Insertable<PurchasesTable>;
export type PurchaseUpdate = Updateable<PurchasesTable>;
export type ReferralPayoutRow = Selectable<ReferralPayoutsTable>;
export type ReferralCodeRow = Selectable<ReferralCodesTable>;
export type UserRow = Selectable<UsersTable>;
export type ContentRow = Selectable<ContentTable>;
export type UserReferralRow = Selectable<UserReferralsTable>;
export type ReferralPayoutEventRow = Selectable<ReferralPayoutEventsTable>;
export type TreasuryGateRow = Selectable<TreasuryGateTable>;
