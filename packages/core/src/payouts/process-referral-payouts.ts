import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type UpdateObject } from 'kysely';
import type { Logger } from 'pino';
import type { Database, Tx } from '../db/database.ts';
import type { Actor, DB, PayoutLevel, PurchaseRow, ReferralPayoutRow, ReferralPayoutStatus } from '../db/types.ts';
import { DomainError, notFound } from '../errors.ts';
import { recordMovement } from '../ledger/ledger.ts';
import { applyBps } from '../money.ts';
import { type PayoutGateway, referralMovement, type TransferRequest } from './payout-gateway.ts';

export interface PayoutContext {
  db: Database;
  gateway: PayoutGateway;
  /** REFERRAL_MIN_PAYOUT: a level whose amount is below it is not paid. */
  minPayout: number;
  logger: Logger;
}

export interface ProcessOptions {
  actor: Actor;
  /** The last attempt the caller will make: a failure leaves the purchase `failed`, not `queued`. */
  finalAttempt?: boolean;
}

export interface PaidLevel {
  level: PayoutLevel;
  amount: number;
  currency: string;
}

export interface ProcessOutcome {
  purchaseId: string;
  status: ReferralPayoutStatus;
  reason: string | null;
  attempts: number;
  /** False when the purchase was already settled and this call changed nothing. */
  changed: boolean;
  /** Levels this call paid. */
  paid: PaidLevel[];
  confirmedAt: Date | null;
  completedAt: Date | null;
}

/** A payout attempt failed; its attempt and error are recorded, and the outcome says what is left. */
export class PayoutFailedError extends DomainError {
  override name = 'PayoutFailedError';
  readonly outcome: ProcessOutcome;
  readonly failedLevels: PayoutLevel[];

  constructor(message: string, outcome: ProcessOutcome, failedLevels: PayoutLevel[], cause?: unknown) {
    super('payout_failed', message, { cause });
    this.outcome = outcome;
    this.failedLevels = failedLevels;
  }
}

const SETTLED: ReadonlySet<ReferralPayoutStatus> = new Set(['completed', 'not_applicable']);

// Headroom on top of the transfer timeouts before another processor may take the purchase over.
export const LEASE_MARGIN_MS = 5_000;
const LEASE_WAIT_STEP_MS = 100;

type Prepared =
  | { kind: 'settled'; outcome: ProcessOutcome }
  | { kind: 'leased-elsewhere'; until: Date }
  | { kind: 'transfer'; purchase: PurchaseRow; pending: LevelToPay[] };

/** A level as planned (not yet recorded) or as read back from `referral_payouts`. */
type LevelToPay = Pick<ReferralPayoutRow, 'purchase_id' | 'level' | 'beneficiary_id' | 'rate_bps' | 'amount' | 'currency' | 'status'>;

type PaidLevelRow = LevelToPay & { reference: string };

interface Chain {
  direct_referrer_id: string | null;
  grand_referrer_id: string | null;
  active: boolean | null;
  direct_rate_bps: number | null;
  grand_rate_bps: number | null;
}

/**
 * The one function that pays a purchase's referral commissions; the worker, the admin endpoint and
 * the CLI all call it, and calling it again is always safe.
 *
 * Under the purchase's row lock it decides the levels once (recorded in `referral_payouts`, whose
 * primary key forbids a second payout per level) and then transfers every unpaid level with the
 * idempotency key `<purchase id>:<level>`. An in-database gateway transfers inside that same
 * transaction. An external gateway is called with no transaction open: a lease on the purchase keeps
 * other processors off it meanwhile, and the idempotency key makes an overlap after an expired lease
 * harmless. A failure records the attempt and error, then throws PayoutFailedError.
 */
export async function processReferralPayouts(
  ctx: PayoutContext,
  purchaseId: string,
  options: ProcessOptions,
): Promise<ProcessOutcome> {
  const log = ctx.logger.child({ purchaseId, actor: options.actor });
  if (ctx.gateway.kind === 'in-database') {
    let result: ProcessOutcome | DomainError;
    try {
      // settleInDatabase answers for every id it is given.
      result = (await ctx.db.transaction().execute((trx) => settleInDatabase(trx, ctx, [purchaseId], options.actor))).get(purchaseId)!;
    } catch (error) {
      // Nothing was committed: record the failed attempt on its own and hand the error back.
      throw await recordFailure(ctx, purchaseId, options, [], error, undefined);
    }
    if (result instanceof DomainError) throw result;
    if (result.changed) log.info({ status: result.status, paid: result.paid }, 'referral payout settled');
    return result;
  }

  const leaseOwner = randomUUID();
  for (;;) {
    let prepared: Prepared;
    try {
      prepared = await ctx.db.transaction().execute((trx) => prepareExternal(trx, ctx, purchaseId, options.actor, leaseOwner));
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw await recordFailure(ctx, purchaseId, options, [], error, undefined);
    }
    if (prepared.kind === 'settled') {
      if (prepared.outcome.changed) log.info({ status: prepared.outcome.status }, 'referral payout settled');
      return prepared.outcome;
    }
    if (prepared.kind === 'leased-elsewhere') {
      // Another processor is transferring right now; its result (or its expired lease) decides.
      await sleep(Math.max(10, Math.min(LEASE_WAIT_STEP_MS, prepared.until.getTime() - Date.now())));
      continue;
    }
    return transferExternally(ctx, prepared, options, leaseOwner, log);
  }
}

export interface PayoutRequest {
  purchaseId: string;
  /** As in ProcessOptions: this request's last attempt. */
  finalAttempt?: boolean;
  /** Logger for this purchase's lines (e.g. carrying the job id); defaults to the context's. */
  logger?: Logger;
}

export type PayoutResult = { purchaseId: string; outcome: ProcessOutcome } | { purchaseId: string; error: unknown };

/**
 * Several purchases at once, with the same guarantees as processReferralPayouts one by one. With
 * an in-database gateway they settle in one transaction (the worker's drain rate is bound by
 * statements per purchase); if that transaction fails, each purchase is processed on its own so a
 * failure is recorded against the purchase that caused it and the others still settle.
 */
export async function processReferralPayoutsBatch(
  ctx: PayoutContext,
  requests: PayoutRequest[],
  actor: Actor,
): Promise<PayoutResult[]> {
  if (ctx.gateway.kind === 'in-database' && requests.length > 1) {
    try {
      const ids = requests.map((r) => r.purchaseId);
      const results = await ctx.db.transaction().execute((trx) => settleInDatabase(trx, ctx, ids, actor));
      return requests.map(({ purchaseId, logger }) => {
        const result = results.get(purchaseId) ?? notFound('purchase', purchaseId);
        if (result instanceof DomainError) return { purchaseId, error: result };
        if (result.changed) {
          (logger ?? ctx.logger).info({ purchaseId, actor, status: result.status, paid: result.paid }, 'referral payout settled');
        }
        return { purchaseId, outcome: result };
      });
    } catch (error) {
      ctx.logger.warn({ err: error, purchases: requests.length }, 'batch of referral payouts failed; settling them one by one');
    }
  }
  return Promise.all(
    requests.map(async ({ purchaseId, finalAttempt, logger }): Promise<PayoutResult> => {
      try {
        return { purchaseId, outcome: await processReferralPayouts({ ...ctx, logger: logger ?? ctx.logger }, purchaseId, { actor, finalAttempt }) };
      } catch (error) {
        return { purchaseId, error };
      }
    }),
  );
}

/**
 * Settles purchases with an in-database gateway inside `trx`: locks them (in id order, so two
 * batches never deadlock), decides each one's levels, transfers all of them in one call to the
 * gateway, records the levels paid and the purchases completed. A purchase that does not exist or is
 * not confirmed gets its DomainError instead of an outcome; any other error rolls back the batch.
 */
async function settleInDatabase(
  trx: Tx,
  ctx: PayoutContext,
  purchaseIds: string[],
  actor: Actor,
): Promise<Map<string, ProcessOutcome | DomainError>> {
  if (ctx.gateway.kind !== 'in-database') throw new Error('unreachable: in-database settlement with an external gateway');
  const results = new Map<string, ProcessOutcome | DomainError>();
  const locked = await lockForPayout(trx, purchaseIds);
  for (const id of purchaseIds) if (!locked.some((l) => l.purchase.id === id)) results.set(id, notFound('purchase', id));

  const open = locked.filter(({ purchase }) => {
    if (!isConfirmed(purchase)) results.set(purchase.id, notConfirmed(purchase.id));
    else if (SETTLED.has(purchase.referral_payout_status!)) results.set(purchase.id, outcomeOf(purchase, false, []));
    else return true;
    return false;
  });
  const recorded = await recordedLevels(trx, open.filter((l) => l.hasLevels).map((l) => l.purchase.id));

  const toComplete: { purchase: PurchaseRow; pending: LevelToPay[] }[] = [];
  for (const { purchase, chain, hasLevels } of open) {
    if (hasLevels) {
      toComplete.push({ purchase, pending: (recorded.get(purchase.id) ?? []).filter((l) => l.status !== 'paid') });
      continue;
    }
    const plan = planLevels(purchase, chain, ctx.minPayout);
    if (plan.levels.length > 0) {
      toComplete.push({ purchase, pending: plan.levels });
      continue;
    }
    results.set(purchase.id, outcomeOf(await settleNotApplicable(trx, purchase, actor, plan.reason), true, []));
  }

  // Everything below commits or rolls back together, so the levels are recorded already paid.
  const pending = toComplete.flatMap((p) => p.pending);
  const transfers = await ctx.gateway.transfer(trx, pending.map(transferRequest));
  await recordLevelsPaid(trx, pending.map((level, i) => ({ ...level, reference: transfers[i]!.reference })));
  const completed = await completeAll(trx, toComplete.map((c) => c.purchase), actor);
  for (const { purchase, pending: paid } of toComplete) {
    results.set(purchase.id, outcomeOf(completed.get(purchase.id)!, true, paid.map(paidLevel)));
  }
  return results;
}

/**
 * `complete` for many locked purchases in one statement: each becomes `completed` with its attempt
 * counted, its lease cleared and its event appended.
 */
async function completeAll(trx: Tx, purchases: PurchaseRow[], actor: Actor): Promise<Map<string, PurchaseRow>> {
  if (purchases.length === 0) return new Map();
  const ids = purchases.map((p) => p.id);
  const from = purchases.map((p) => p.referral_payout_status);
  const { rows } = await sql<PurchaseRow>`
    with changed as (
      update purchases set
        referral_payout_status = 'completed',
        referral_payout_reason = null,
        referral_payout_completed_at = now(),
        referral_payout_attempts = referral_payout_attempts + 1,
        referral_payout_lease_owner = null,
        referral_payout_lease_until = null
      where id = any(${ids}::uuid[])
      returning *
    ),
    event as (
      insert into referral_payout_events (purchase_id, from_status, to_status, actor, attempt)
      select c.id, prior.from_status, 'completed', ${actor}, c.referral_payout_attempts
        from changed c join unnest(${ids}::uuid[], ${from}::text[]) as prior(id, from_status) on prior.id = c.id
    )
    select * from changed`.execute(trx);
  return new Map(rows.map((row) => [row.id, row]));
}

async function recordedLevels(trx: Tx, purchaseIds: string[]): Promise<Map<string, LevelToPay[]>> {
  const byPurchase = new Map<string, LevelToPay[]>();
  if (purchaseIds.length === 0) return byPurchase;
  const rows = await trx.selectFrom('referral_payouts').selectAll().where('purchase_id', 'in', purchaseIds).orderBy('level').execute();
  for (const row of rows) byPurchase.set(row.purchase_id, [...(byPurchase.get(row.purchase_id) ?? []), row]);
  return byPurchase;
}

/** Prepares one purchase for an external gateway: levels recorded pending, then a lease taken. */
async function prepareExternal(trx: Tx, ctx: PayoutContext, purchaseId: string, actor: Actor, leaseOwner: string): Promise<Prepared> {
  if (ctx.gateway.kind !== 'external') throw new Error('unreachable: external preparation with an in-database gateway');
  const [locked] = await lockForPayout(trx, [purchaseId]);
  if (!locked) throw notFound('purchase', purchaseId);
  const { purchase, chain, leaseActive, hasLevels } = locked;
  if (!isConfirmed(purchase)) throw notConfirmed(purchaseId);
  if (SETTLED.has(purchase.referral_payout_status!)) {
    return { kind: 'settled', outcome: outcomeOf(purchase, false, []) };
  }
  if (leaseActive && purchase.referral_payout_lease_owner !== leaseOwner) {
    return { kind: 'leased-elsewhere', until: purchase.referral_payout_lease_until! };
  }

  let levels: LevelToPay[];
  if (hasLevels) {
    levels = (await recordedLevels(trx, [purchaseId])).get(purchaseId) ?? [];
  } else {
    const plan = planLevels(purchase, chain, ctx.minPayout);
    if (plan.levels.length === 0) {
      return { kind: 'settled', outcome: outcomeOf(await settleNotApplicable(trx, purchase, actor, plan.reason), true, []) };
    }
    levels = plan.levels;
    // Recorded as pending before any money moves: a crash mid-transfer leaves a row to retry.
    await trx.insertInto('referral_payouts').values(levels.map(plannedRow)).execute();
  }
  const pending = levels.filter((l) => l.status !== 'paid');
  const leaseMs = ctx.gateway.timeoutMs * Math.max(1, pending.length) + LEASE_MARGIN_MS;
  await trx
    .updateTable('purchases')
    .set({
      referral_payout_lease_owner: leaseOwner,
      referral_payout_lease_until: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
    })
    .where('id', '=', purchaseId)
    .execute();
  return { kind: 'transfer', purchase, pending };
}

async function transferExternally(
  ctx: PayoutContext,
  prepared: Extract<Prepared, { kind: 'transfer' }>,
  options: ProcessOptions,
  leaseOwner: string,
  log: Logger,
): Promise<ProcessOutcome> {
  const { purchase, pending } = prepared;
  if (ctx.gateway.kind !== 'external') throw new Error('unreachable: external transfer with an in-database gateway');

  const failures: { level: PayoutLevel; error: unknown }[] = [];
  const paid: PaidLevel[] = [];
  for (const level of pending) {
    try {
      const { reference } = await ctx.gateway.transfer(transferRequest(level));
      // The treasury moved the money; mirror it in the ledger with the level's status change.
      await ctx.db.transaction().execute(async (trx) => {
        if (await markLevelPaid(trx, level, reference)) {
          await recordMovement(trx, referralMovement({ amount: level.amount, currency: level.currency, purchaseId: level.purchase_id, beneficiaryId: level.beneficiary_id }));
        }
      });
      paid.push(paidLevel(level));
    } catch (error) {
      failures.push({ level: level.level, error });
      log.warn({ payoutLevel: level.level, err: error }, 'referral transfer failed');
      await ctx.db
        .updateTable('referral_payouts')
        .set({ status: 'failed', error: errorMessage(error), updated_at: sql`now()` })
        .where('purchase_id', '=', level.purchase_id)
        .where('level', '=', level.level)
        .where('status', '<>', 'paid')
        .execute();
    }
  }

  if (failures.length > 0) {
    const error = failures.length === 1 ? failures[0]!.error : new Error(failures.map((f) => `${f.level}: ${errorMessage(f.error)}`).join('; '));
    throw await recordFailure(ctx, purchase.id, options, failures.map((f) => f.level), error, leaseOwner);
  }

  const row = await ctx.db.transaction().execute(async (trx) => {
    const current = await lockPurchase(trx, purchase.id);
    if (SETTLED.has(current.referral_payout_status!)) return current;
    const unpaid = await trx
      .selectFrom('referral_payouts')
      .select('level')
      .where('purchase_id', '=', purchase.id)
      .where('status', '<>', 'paid')
      .execute();
    if (unpaid.length > 0) {
      throw new Error(`levels ${unpaid.map((u) => u.level).join(', ')} are still unpaid`);
    }
    return (await completeAll(trx, [current], options.actor)).get(current.id)!;
  });
  log.info({ status: row.referral_payout_status, paid }, 'referral payout settled');
  return outcomeOf(row, true, paid);
}

async function lockPurchase(trx: Tx, purchaseId: string): Promise<PurchaseRow> {
  const purchase = await trx.selectFrom('purchases').selectAll().where('id', '=', purchaseId).forUpdate().executeTakeFirst();
  if (!purchase) throw notFound('purchase', purchaseId);
  if (!isConfirmed(purchase)) throw notConfirmed(purchaseId);
  return purchase;
}

const isConfirmed = (purchase: PurchaseRow) => purchase.status === 'confirmed' && purchase.referral_payout_status !== null;

const notConfirmed = (purchaseId: string) =>
  new DomainError('purchase_not_confirmed', `purchase ${purchaseId} is not confirmed yet; only confirmed purchases earn referral payouts`);

/**
 * Locks the purchases (in id order) and reads, in the same round trip, what a payout needs: each
 * buyer's chain and code, whether another processor's lease is still running (by the database
 * clock), and whether levels were already recorded by an earlier attempt.
 */
async function lockForPayout(trx: Tx, purchaseIds: string[]) {
  const rows = await trx
    .selectFrom('purchases as p')
    .leftJoin('user_referrals as r', 'r.user_id', 'p.buyer_id')
    .leftJoin('referral_codes as c', 'c.code', 'r.code')
    .selectAll('p')
    .select((eb) => [
      'r.direct_referrer_id',
      'r.grand_referrer_id',
      'c.active',
      'c.direct_rate_bps',
      'c.grand_rate_bps',
      sql<boolean>`coalesce(p.referral_payout_lease_until > now(), false)`.as('lease_active'),
      eb.exists(eb.selectFrom('referral_payouts as l').select('l.level').whereRef('l.purchase_id', '=', 'p.id')).as('has_levels'),
    ])
    .where('p.id', 'in', purchaseIds)
    .orderBy('p.id')
    .forUpdate('p')
    .execute();
  return rows.map(({ direct_referrer_id, grand_referrer_id, active, direct_rate_bps, grand_rate_bps, lease_active, has_levels, ...purchase }) => ({
    purchase,
    chain: { direct_referrer_id, grand_referrer_id, active, direct_rate_bps, grand_rate_bps } satisfies Chain,
    leaseActive: lease_active,
    hasLevels: Boolean(has_levels),
  }));
}

interface Plan {
  levels: LevelToPay[];
  reason: string;
}

/**
 * The levels a purchase pays, decided once and then fixed in `referral_payouts`: each is
 * floor(price × rate / 10000) with the rates of the code the buyer signed up with, capped so that
 * together they never exceed the fee the platform took at confirm.
 */
function planLevels(purchase: PurchaseRow, chain: Chain, minPayout: number): Plan {
  if (purchase.price === 0) return { levels: [], reason: 'free_content' };
  if (chain.direct_referrer_id === null) return { levels: [], reason: 'no_referrer' };
  if (!chain.active) return { levels: [], reason: 'code_inactive' };

  let budget = purchase.platform_fee ?? 0;
  const candidates: [PayoutLevel, string | null, number][] = [
    ['direct', chain.direct_referrer_id, chain.direct_rate_bps ?? 0],
    ['grand', chain.grand_referrer_id, chain.grand_rate_bps ?? 0],
  ];
  const levels: Plan['levels'] = [];
  for (const [level, beneficiary, rate] of candidates) {
    if (beneficiary === null) continue;
    const amount = Math.min(applyBps(purchase.price, rate), budget);
    if (amount < minPayout) continue;
    budget -= amount;
    levels.push({ purchase_id: purchase.id, level, beneficiary_id: beneficiary, rate_bps: rate, amount, currency: purchase.currency, status: 'pending' });
  }
  return { levels, reason: 'below_minimum' };
}

const plannedRow = ({ status: _status, ...level }: LevelToPay) => level;

/** Records levels paid in one statement, whether or not an earlier attempt recorded them pending. */
async function recordLevelsPaid(trx: Tx, levels: PaidLevelRow[]): Promise<void> {
  if (levels.length === 0) return;
  await trx
    .insertInto('referral_payouts')
    .values(levels.map(({ status: _status, reference, ...level }) => ({ ...level, status: 'paid' as const, reference, paid_at: sql`now()` })))
    .onConflict((oc) =>
      oc.columns(['purchase_id', 'level']).doUpdateSet((eb) => ({
        status: 'paid',
        reference: eb.ref('excluded.reference'),
        paid_at: sql`now()`,
        error: null,
        updated_at: sql`now()`,
      })),
    )
    .execute();
}

function transferRequest(level: LevelToPay): TransferRequest {
  return {
    idempotencyKey: `${level.purchase_id}:${level.level}`,
    beneficiaryId: level.beneficiary_id,
    amount: level.amount,
    currency: level.currency,
    purchaseId: level.purchase_id,
  };
}

/** Marks a level paid; false when it already was (a concurrent processor got there first). */
async function markLevelPaid(trx: Tx, level: LevelToPay, reference: string): Promise<boolean> {
  const result = await trx
    .updateTable('referral_payouts')
    .set({ status: 'paid', reference, paid_at: sql`now()`, error: null, updated_at: sql`now()` })
    .where('purchase_id', '=', level.purchase_id)
    .where('level', '=', level.level)
    .where('status', '<>', 'paid')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Nothing to pay: the purchase is settled as `not_applicable` with the plan's reason. */
function settleNotApplicable(trx: Tx, purchase: PurchaseRow, actor: Actor, reason: string): Promise<PurchaseRow> {
  return transition(trx, purchase, actor, purchase.referral_payout_attempts + 1, {
    referral_payout_status: 'not_applicable',
    referral_payout_reason: reason,
    referral_payout_completed_at: sql`now()`,
  });
}

/** Applies a status change to a locked purchase, clears its lease and appends the event: one statement. */
async function transition(
  trx: Tx,
  purchase: PurchaseRow,
  actor: Actor,
  attempt: number,
  change: UpdateObject<DB, 'purchases'> & { referral_payout_status: ReferralPayoutStatus },
  error: string | null = null,
): Promise<PurchaseRow> {
  return trx
    .with('changed', (db) =>
      db
        .updateTable('purchases')
        .set({ ...change, referral_payout_attempts: attempt, referral_payout_lease_owner: null, referral_payout_lease_until: null })
        .where('id', '=', purchase.id)
        .returningAll(),
    )
    .with('event', (db) =>
      db.insertInto('referral_payout_events').values({
        purchase_id: purchase.id,
        from_status: purchase.referral_payout_status,
        to_status: change.referral_payout_status,
        actor,
        attempt,
        error,
      }),
    )
    .selectFrom('changed')
    .selectAll()
    .executeTakeFirstOrThrow();
}

/**
 * Records a failed attempt in its own transaction: attempts + 1 and the last error; on the final
 * attempt the purchase becomes `failed`. A purchase settled meanwhile by another processor is left
 * alone. Returns the error to throw.
 */
async function recordFailure(
  ctx: PayoutContext,
  purchaseId: string,
  options: ProcessOptions,
  failedLevels: PayoutLevel[],
  cause: unknown,
  leaseOwner: string | undefined,
): Promise<PayoutFailedError> {
  const message = errorMessage(cause);
  const row = await ctx.db.transaction().execute(async (trx) => {
    const purchase = await lockPurchase(trx, purchaseId);
    if (SETTLED.has(purchase.referral_payout_status!)) return purchase;
    // Someone else holds the purchase now (our lease expired): their result stands, not ours.
    if (leaseOwner !== undefined && purchase.referral_payout_lease_owner !== leaseOwner && purchase.referral_payout_lease_owner !== null) {
      return purchase;
    }
    const status: ReferralPayoutStatus = options.finalAttempt ? 'failed' : purchase.referral_payout_status!;
    return transition(
      trx,
      purchase,
      options.actor,
      purchase.referral_payout_attempts + 1,
      {
        referral_payout_status: status,
        referral_payout_last_error: message,
        referral_payout_failed_at: status === 'failed' ? sql`now()` : purchase.referral_payout_failed_at,
      },
      message,
    );
  });
  ctx.logger.warn({ purchaseId, actor: options.actor, attempts: row.referral_payout_attempts, status: row.referral_payout_status, err: cause }, 'referral payout attempt failed');
  return new PayoutFailedError(`referral payout of purchase ${purchaseId} failed: ${message}`, outcomeOf(row, true, []), failedLevels, cause);
}

/**
 * Marks a queued purchase `failed` after its retries are spent elsewhere (the queue's dead letter),
 * keeping its last error. Settled purchases are left alone.
 */
export async function markReferralPayoutFailed(
  db: Database,
  purchaseId: string,
  actor: Actor,
  error: string,
): Promise<ReferralPayoutStatus> {
  return db.transaction().execute(async (trx) => {
    const purchase = await lockPurchase(trx, purchaseId);
    if (purchase.referral_payout_status !== 'queued') return purchase.referral_payout_status!;
    const row = await transition(
      trx,
      purchase,
      actor,
      purchase.referral_payout_attempts,
      {
        referral_payout_status: 'failed',
        referral_payout_last_error: purchase.referral_payout_last_error ?? error,
        referral_payout_failed_at: sql`now()`,
      },
      purchase.referral_payout_last_error ?? error,
    );
    return row.referral_payout_status!;
  });
}

function outcomeOf(row: PurchaseRow, changed: boolean, paid: PaidLevel[]): ProcessOutcome {
  return {
    purchaseId: row.id,
    status: row.referral_payout_status!,
    reason: row.referral_payout_reason,
    attempts: row.referral_payout_attempts,
    changed,
    paid,
    confirmedAt: row.confirmed_at,
    completedAt: row.referral_payout_completed_at,
  };
}

const paidLevel = (level: LevelToPay): PaidLevel => ({ level: level.level, amount: level.amount, currency: level.currency });

export function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 1000 ? `${message.slice(0, 997)}...` : message;
}
