/** Pause is the treasury gate held by an operator: nothing (not even a probe) goes through until resumed. */

import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { Actor } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import { CLEAR_PROBE, changeGate, lockGate, type TreasuryGateView, viewOf } from './gate-record.ts';

export interface OperatorAction {
  actor: Actor;
  /** Who asked: the admin token's name, or the CLI's user. */
  operator: string;
}

export const MAX_PAUSE_REASON = 500;

/**
 * Pauses payouts for every process until resumed: transfers already on the wire finish, no new one
 * starts, no purchase is charged an attempt. Pausing while paused is a conflict naming who holds it.
 */
export async function pausePayouts(
  db: Database,
  action: OperatorAction & { reason: string },
  logger?: Logger,
): Promise<TreasuryGateView> {
  const reason = action.reason.trim();
  if (reason === '' || reason.length > MAX_PAUSE_REASON) {
    throw new DomainError('validation_failed', `a pause needs a reason of 1 to ${MAX_PAUSE_REASON} characters`);
  }
  const { row, transition } = await db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    if (previous.state === 'paused') {
      throw new DomainError(
        'conflict',
        `payouts are already paused by ${previous.paused_by} since ${previous.since.toISOString()}: ${previous.paused_reason}`,
      );
    }
    return changeGate(
      trx,
      previous,
      { state: 'paused', paused_by: action.operator, paused_reason: reason, ...CLEAR_PROBE },
      {
        actor: action.actor,
        operator: action.operator,
        reason,
        error: null,
      },
    );
  });
  logger?.warn({ gate: transition, operator: action.operator, reason }, 'referral payouts paused');
  return viewOf(row);
}

/**
 * Resumes paused payouts: the gate closes with a fresh failure count, so a treasury still down trips
 * the breaker again within a few calls. Resuming what is not paused is a conflict.
 */
export async function resumePayouts(db: Database, action: OperatorAction, logger?: Logger): Promise<TreasuryGateView> {
  const { row, transition } = await db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    if (previous.state !== 'paused') {
      throw new DomainError(
        'conflict',
        `payouts are not paused (the treasury gate is ${previous.state.replace('_', '-')})`,
      );
    }
    return changeGate(
      trx,
      previous,
      { state: 'closed', paused_by: null, paused_reason: null, consecutive_failures: 0, ...CLEAR_PROBE },
      {
        actor: action.actor,
        operator: action.operator,
        reason: previous.paused_reason,
        error: null,
      },
    );
  });
  logger?.info({ gate: transition, operator: action.operator }, 'referral payouts resumed');
  return viewOf(row);
}
