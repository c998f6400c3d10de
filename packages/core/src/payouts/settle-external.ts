import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Tx } from '../db/database.ts';
import type { PurchaseRow } from '../db/types.ts';
import { notFound } from '../errors.ts';
import type { ActedBy, ExternalGateway, PayoutContext, PayoutRequest } from './payout-context.ts';
import {
  errorMessage,
  isSettled,
  type PayoutRejection,
  type PayoutResult,
  rejected,
  resultOf,
} from './payout-result.ts';
import {
  markLevelFailed,
  markLevelsPaid,
  recordedLevels,
  recordPlanAndLease,
  unpaidLevelNames,
} from './level-store.ts';
import { completeWithPaidLevels, lockForPayout, releaseLease, settleNotApplicable, takeLease } from './payout-store.ts';
import {
  foreignLevels,
  isConfirmed,
  type LevelToPay,
  notConfirmed,
  paidLevel,
  planLevels,
  type RecordedLevel,
  transferRequest,
} from './plan-levels.ts';
import { type AttemptOptions, recordFailure } from './record-failure.ts';
import { type Admission, TreasuryGateShut } from '../treasury/treasury-gate.ts';
import { type TransferFailureKind, transferFailureKind } from '../treasury/transfer-failure.ts';

// Headroom on top of the transfer timeouts before another processor may take the purchase over.
export const LEASE_MARGIN_MS = 5_000;
const LEASE_WAIT_STEP_MS = 100;

type Prepared =
  | { kind: 'done'; result: PayoutResult | PayoutRejection }
  | { kind: 'leased-elsewhere'; until: Date }
  | { kind: 'transfer'; purchase: PurchaseRow; pending: LevelToPay[] };

/**
 * Settlement through a network gateway, without holding a transaction (a row lock, a pooled
 * connection) across a call to the treasury:
 * 1. under the row lock, record the levels `pending` and take a lease on the purchase; commit;
 * 2. transfer each unpaid level with its idempotency key, recording each answer in its own
 *    transaction (`markLevelPaid` credits the ledger only for a level not paid yet);
 * 3. under the row lock again, complete the purchase once every level is paid.
 * While the lease runs every other processor waits for its result. Once it has expired another may
 * take over: the treasury deduplicates the repeated transfer by its key, `markLevelPaid` the repeated
 * credit, and `recordFailure` ignores the late failure of a processor that lost its lease.
 */
export async function settleExternally(
  ctx: PayoutContext<ExternalGateway>,
  request: PayoutRequest,
  by: ActedBy,
): Promise<PayoutResult | PayoutRejection> {
  // Asked before anything is written: while the gate is shut a payout costs no attempt and no lease.
  const admission: Admission = ctx.gate ? await ctx.gate.admit() : { kind: 'pass' };
  if (admission.kind === 'shut') return rejected(request.purchaseId, new TreasuryGateShut(admission.view));
  const options = { ...by, finalAttempt: request.finalAttempt };
  const leaseOwner = randomUUID();
  let prepared: Prepared;
  for (;;) {
    try {
      prepared = await ctx.db.transaction().execute((trx) => prepare(trx, ctx, request.purchaseId, by, leaseOwner));
    } catch (error) {
      await ctx.gate?.release(admission);
      if (error instanceof Refused) return error.result;
      return recordFailure(ctx, request.purchaseId, options, [], error);
    }
    if (prepared.kind !== 'leased-elsewhere') break;
    // Another processor is transferring right now; its result (or its expired lease) decides.
    await sleep(Math.max(10, Math.min(LEASE_WAIT_STEP_MS, prepared.until.getTime() - Date.now())));
  }
  if (prepared.kind === 'done') {
    await ctx.gate?.release(admission);
    return prepared.result;
  }
  return transferLevels(ctx, prepared, options, leaseOwner, admission);
}

async function prepare(
  trx: Tx,
  ctx: PayoutContext<ExternalGateway>,
  purchaseId: string,
  by: ActedBy,
  leaseOwner: string,
): Promise<Prepared> {
  const [locked] = await lockForPayout(trx, [purchaseId]);
  if (!locked) return { kind: 'done', result: rejected(purchaseId, notFound('purchase', purchaseId)) };
  const { purchase, chain, leaseActive } = locked;
  if (!isConfirmed(purchase)) return { kind: 'done', result: rejected(purchaseId, notConfirmed(purchaseId)) };
  if (isSettled(purchase.referral_payout_status)) return { kind: 'done', result: resultOf(purchase, false, []) };
  if (leaseActive && purchase.referral_payout_lease_owner !== leaseOwner) {
    return { kind: 'leased-elsewhere', until: purchase.referral_payout_lease_until! };
  }

  const leaseFor = (levels: number) => ({
    owner: leaseOwner,
    ms: ctx.gateway.timeoutMs * Math.max(1, levels) + LEASE_MARGIN_MS,
  });
  const plan = planLevels(purchase, chain, ctx.minPayout);
  let levels: RecordedLevel[];
  if (plan.levels.length > 0) {
    // One statement records the plan (unless an earlier attempt recorded one: it stands) and takes
    // the lease; the lease covers every planned level, paid or not.
    levels = await recordPlanAndLease(trx, purchaseId, plan.levels, ctx.gateway.name, leaseFor(plan.levels.length));
  } else {
    // Nothing to pay by today's rules; levels an earlier attempt recorded are still owed.
    const recorded = (await recordedLevels(trx, [purchaseId])).get(purchaseId);
    if (!recorded) {
      return { kind: 'done', result: resultOf(await settleNotApplicable(trx, purchase, by, plan.reason), true, []) };
    }
    levels = recorded;
    await takeLease(trx, purchaseId, leaseOwner, leaseFor(levels.filter((l) => l.status !== 'paid').length).ms);
  }
  // Planned for another gateway: refused before any transfer, and the lease is rolled back with it.
  const foreign = foreignLevels(levels, ctx.gateway.name);
  if (foreign) throw new Refused(rejected(purchaseId, foreign));
  return { kind: 'transfer', purchase, pending: levels.filter((l) => l.status !== 'paid') };
}

/** Ends a preparation without committing anything it wrote, with this answer. */
class Refused extends Error {
  readonly result: PayoutRejection;
  constructor(result: PayoutRejection) {
    super('refused');
    this.result = result;
  }
}

type LevelOutcome =
  | { result: 'paid'; level: LevelToPay; reference: string }
  /** Not sent: the gate shut between this payout's admission and the level's turn for a slot. */
  | { result: 'held'; level: LevelToPay }
  | { result: 'failed'; level: LevelToPay; error: unknown; kind: TransferFailureKind | undefined };

/**
 * Transfers the unpaid levels concurrently (each holding one of the process's transfer slots, never
 * a connection while on the wire), records each answer, then settles the purchase:
 * * every level paid → completed;
 * * a level refused (permanent) → failed at once, naming the level and the treasury's answer; the
 *   other level was transferred all the same;
 * * transient failures while the gate stayed closed → an attempt spent, retried with backoff;
 * * transient failures that opened the breaker (or met it open or paused) → nothing recorded
 *   against the purchase: it waits for the gate without spending an attempt.
 */
async function transferLevels(
  ctx: PayoutContext<ExternalGateway>,
  { purchase, pending }: Extract<Prepared, { kind: 'transfer' }>,
  options: AttemptOptions,
  leaseOwner: string,
  admission: Admission,
): Promise<PayoutResult | PayoutRejection> {
  const log = ctx.logger.child({
    purchaseId: purchase.id,
    actor: options.actor,
    operator: options.operator ?? undefined,
  });
  const transferOne = async (level: LevelToPay): Promise<LevelOutcome> => {
    // A probe goes whatever the gate says; anything else re-checks it once it has a slot.
    if (admission.kind === 'pass' && ctx.gate && !(await ctx.gate.isClosed())) return { result: 'held', level };
    try {
      const { reference } = await ctx.gateway.transfer(transferRequest(level));
      await ctx.gate?.report(admission, 'paid');
      return { result: 'paid', level, reference };
    } catch (error) {
      const kind = transferFailureKind(error);
      log.warn({ payoutLevel: level.level, failure: kind ?? 'unexpected', err: error }, 'referral transfer failed');
      if (kind !== undefined) await ctx.gate?.report(admission, kind, errorMessage(error));
      return { result: 'failed', level, error, kind };
    }
  };
  const slots = ctx.transferSlots;
  const outcomes = await Promise.all(
    pending.map((level) => (slots ? slots.run(() => transferOne(level)) : transferOne(level))),
  );

  const failures = outcomes.filter((o) => o.result === 'failed');
  const held = outcomes.some((o) => o.result === 'held');
  const paid = outcomes.filter((o) => o.result === 'paid');
  if (failures.length === 0 && !held) return complete(ctx, purchase.id, paid, options);

  // What the treasury answered is recorded first, whatever happens to the purchase next.
  await ctx.db.transaction().execute(async (trx) => {
    await markLevelsPaid(trx, paid);
    for (const f of failures) await markLevelFailed(trx, f.level, errorMessage(f.error));
  });
  const refused = failures.filter((f) => f.kind === 'permanent');
  if (refused.length > 0) {
    // Retrying cannot change a refusal: the purchase fails now, with each refused level named.
    const error = new Error(refused.map((f) => `${f.level.level} refused: ${errorMessage(f.error)}`).join('; '));
    return recordFailure(
      ctx,
      purchase.id,
      { ...options, finalAttempt: true },
      failures.map((f) => f.level.level),
      error,
      leaseOwner,
    );
  }
  if (held || (failures.length > 0 && failures.every((f) => f.kind === 'transient'))) {
    const gate = ctx.gate ? await ctx.gate.view() : undefined;
    // Held levels alone are never an attempt, even if the gate closed again meanwhile.
    if (gate && (gate.state !== 'closed' || failures.length === 0)) {
      await releaseLease(ctx.db, purchase.id, leaseOwner);
      return rejected(purchase.id, new TreasuryGateShut(gate));
    }
  }
  const error =
    failures.length === 1
      ? failures[0]!.error
      : new Error(failures.map((f) => `${f.level.level}: ${errorMessage(f.error)}`).join('; '));
  return recordFailure(
    ctx,
    purchase.id,
    options,
    failures.map((f) => f.level.level),
    error,
    leaseOwner,
  );
}

type Paid = Extract<LevelOutcome, { result: 'paid' }>;

/**
 * Every level transferred: the levels and the purchase's completion commit together, under the
 * row lock, in one statement (a crash before it commits leaves the levels pending; the retry sends
 * them again with their keys and the treasury answers with the same references).
 */
async function complete(
  ctx: PayoutContext<ExternalGateway>,
  purchaseId: string,
  paid: Paid[],
  options: AttemptOptions,
): Promise<PayoutResult> {
  const outcome = await completeWithPaidLevels(ctx.db, purchaseId, paid, options);
  const row = outcome.purchase;
  if (!row) throw notFound('purchase', purchaseId);
  if (!outcome.completed && !isSettled(row.referral_payout_status)) {
    // Not reachable while every level is planned before its transfer; said plainly should it happen.
    const unpaid = await unpaidLevelNames(ctx.db, purchaseId);
    throw new Error(`levels ${unpaid.join(', ')} are still unpaid`);
  }
  return resultOf(
    row,
    true,
    paid.map((p) => paidLevel(p.level)),
  );
}
