import { sql } from 'kysely';
import { ConfigError, type PayoutGatewayKind } from '../config.ts';
import type { Database } from '../db/database.ts';
import { DomainError } from '../errors.ts';

/**
 * One payout gateway per deployment. The database records it (`payout_gateway_setting`): the first
 * API, worker or CLI process that starts records its own PAYOUT_GATEWAY, and every later one must
 * match, so an API left on `ledger` cannot "repair" levels an `http` worker left for the treasury.
 * Changing it is an explicit operator step (`switchDeploymentGateway`).
 */

export interface DeploymentGateway {
  gateway: PayoutGatewayKind;
  setAt: Date;
  setBy: string;
}

const SWITCH_COMMAND = 'npm run manage-referral-payouts -- --set-gateway';

/** This process's PAYOUT_GATEWAY is not the database's: it must not start. Exit code 2, as any bad configuration. */
export class GatewayMismatchError extends ConfigError {
  override name = 'GatewayMismatchError';
  readonly configured: PayoutGatewayKind;
  readonly recorded: DeploymentGateway;

  constructor(configured: PayoutGatewayKind, recorded: DeploymentGateway) {
    super(
      `PAYOUT_GATEWAY is "${configured}" but this database pays referrals through "${recorded.gateway}" ` +
        `(recorded ${recorded.setAt.toISOString()} by ${recorded.setBy}); start with PAYOUT_GATEWAY=${recorded.gateway}, ` +
        `or switch the deployment first: ${SWITCH_COMMAND} ${configured}`,
    );
    this.configured = configured;
    this.recorded = recorded;
  }
}

/** The database's gateway, or null before any process recorded one. */
export async function readDeploymentGateway(db: Database): Promise<DeploymentGateway | null> {
  const row = await db.selectFrom('payout_gateway_setting').selectAll().executeTakeFirst();
  if (!row?.gateway) return null;
  return { gateway: row.gateway, setAt: row.set_at!, setBy: row.set_by! };
}

/**
 * Called by every process before it pays anything: records `gateway` as the database's when none is
 * yet, and throws a GatewayMismatchError when another one is. Two processes starting at once with
 * different gateways cannot both win: the update only fills an empty row, and the read that follows
 * sees whichever committed first.
 */
export async function ensureDeploymentGateway(
  db: Database,
  gateway: PayoutGatewayKind,
  startedBy: string,
): Promise<DeploymentGateway> {
  await db
    .updateTable('payout_gateway_setting')
    .set({ gateway, set_at: sql`now()`, set_by: startedBy })
    .where('gateway', 'is', null)
    .execute();
  const recorded = await readDeploymentGateway(db);
  if (!recorded) throw new Error('payout_gateway_setting has no row; the database is not fully migrated');
  if (recorded.gateway !== gateway) throw new GatewayMismatchError(gateway, recorded);
  return recorded;
}

export interface GatewaySwitch {
  from: PayoutGatewayKind | null;
  to: PayoutGatewayKind;
  changed: boolean;
}

/**
 * The operator's explicit switch of the deployment's gateway (e.g. from `ledger` to `http` once a
 * treasury exists). Refused while anything is left to settle through the old one: a queued purchase
 * (its levels may be planned for the old gateway at any moment) or a level not paid (pending,
 * failed: only its own gateway may settle it). The processes still running with the old
 * PAYOUT_GATEWAY must then be restarted with the new one; until then a new start of the old one is
 * refused. Under a table lock so no payout plans a level while it is checked.
 */
export async function switchDeploymentGateway(
  db: Database,
  to: PayoutGatewayKind,
  operator: string,
): Promise<GatewaySwitch> {
  return db.transaction().execute(async (trx) => {
    const current = await trx.selectFrom('payout_gateway_setting').selectAll().forUpdate().executeTakeFirst();
    if (!current) throw new Error('payout_gateway_setting has no row; the database is not fully migrated');
    const from = current.gateway;
    if (from === to) return { from, to, changed: false };
    // A level is planned under its purchase's row lock while the purchase is queued or failed; this
    // lock waits for those in progress and holds new ones off until the switch commits.
    await sql`lock table referral_payouts in share mode`.execute(trx);
    const { rows } = await sql<{ queued: string; unpaid: string }>`
      select (select count(*) from purchases where referral_payout_status = 'queued') as queued,
             (select count(*) from referral_payouts where status in ('pending', 'failed')
                and gateway <> ${to}) as unpaid`.execute(trx);
    const queued = Number(rows[0]!.queued);
    const unpaid = Number(rows[0]!.unpaid);
    if (queued > 0 || unpaid > 0) {
      const left = [
        queued > 0 ? `${queued} purchase(s) still queued (let the worker settle them)` : '',
        unpaid > 0
          ? `${unpaid} level(s) planned for "${from}" still unpaid (repair them with the "${from}" gateway or write their purchases off)`
          : '',
      ].filter((s) => s !== '');
      throw new DomainError(
        'conflict',
        `cannot switch referral payouts from "${from}" to "${to}" yet: ${left.join('; ')}`,
      );
    }
    await trx
      .updateTable('payout_gateway_setting')
      .set({ gateway: to, set_at: sql`now()`, set_by: operator })
      .execute();
    return { from, to, changed: true };
  });
}
