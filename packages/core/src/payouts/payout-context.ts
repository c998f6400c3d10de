import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Actor } from '../db/types.ts';
import { type GateTransition, TreasuryGate } from '../treasury/treasury-gate.ts';
import { TransferSlots } from '../treasury/transfer-slots.ts';
import { gatewayFromConfig, type PayoutGateway } from './payout-gateway.ts';

/** What every payout call needs; the same for the worker, the admin endpoint and the CLI. */
export interface PayoutContext<G extends PayoutGateway = PayoutGateway> {
  db: Database;
  gateway: G;
  /** REFERRAL_MIN_PAYOUT: a level whose amount is below it is not paid. */
  minPayout: number;
  logger: Logger;
  /**
   * The treasury gate shared with every other process (breaker and pause). Without one nothing is
   * held back: only tests that exercise settlement alone leave it out.
   */
  gate?: TreasuryGate;
  /** TREASURY_MAX_IN_FLIGHT: transfers this process keeps on the wire at once. Unbounded without. */
  transferSlots?: TransferSlots;
}

export type InDatabaseGateway = Extract<PayoutGateway, { kind: 'in-database' }>;
export type ExternalGateway = Extract<PayoutGateway, { kind: 'external' }>;

/**
 * The payout context a deployment's configuration describes. `gateway` overrides the configured one
 * (tests point it at a misbehaving treasury); every process otherwise pays through the same gateway.
 */
export function payoutContextFromConfig(
  config: Pick<
    Config,
    'payoutGateway' | 'treasuryUrl' | 'treasuryTimeoutMs' | 'referralMinPayout' | 'treasuryMaxInFlight'
  >,
  deps: { db: Database; logger: Logger; gateway?: PayoutGateway; onGateTransition?(transition: GateTransition): void },
): PayoutContext {
  return {
    db: deps.db,
    gateway: deps.gateway ?? gatewayFromConfig(config),
    minPayout: config.referralMinPayout,
    logger: deps.logger,
    gate: new TreasuryGate({
      db: deps.db,
      logger: deps.logger,
      // A probe is one purchase's transfers (sent together); past this another process may probe.
      probeLeaseMs: 2 * config.treasuryTimeoutMs + 5_000,
      onTransition: deps.onGateTransition,
    }),
    transferSlots: new TransferSlots(config.treasuryMaxInFlight),
  };
}

/**
 * Who runs a payout: the entry point, and for a run an operator asked for (console, admin API,
 * CLI) the operator's name, which the purchase's history records beside the actor.
 */
export interface ActedBy {
  actor: Actor;
  operator?: string | null;
}

/** One purchase to process, as part of a batch. */
export interface PayoutRequest {
  purchaseId: string;
  /** The last attempt the caller will make: a failure leaves the purchase `failed`, not `queued`. */
  finalAttempt?: boolean;
  /** Logger for this purchase's lines (e.g. carrying the job id); defaults to the context's. */
  logger?: Logger;
}
