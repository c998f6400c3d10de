import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { gatewayFromConfig, type PayoutGateway } from './payout-gateway.ts';

/** What every payout call needs; the same for the worker, the admin endpoint and the CLI. */
export interface PayoutContext<G extends PayoutGateway = PayoutGateway> {
  db: Database;
  gateway: G;
  /** REFERRAL_MIN_PAYOUT: a level whose amount is below it is not paid. */
  minPayout: number;
  logger: Logger;
}

export type InDatabaseGateway = Extract<PayoutGateway, { kind: 'in-database' }>;
export type ExternalGateway = Extract<PayoutGateway, { kind: 'external' }>;

/**
 * The payout context a deployment's configuration describes. `gateway` overrides the configured one
 * (tests point it at a misbehaving treasury); every process otherwise pays through the same gateway.
 */
export function payoutContextFromConfig(
  config: Pick<Config, 'payoutGateway' | 'treasuryUrl' | 'treasuryTimeoutMs' | 'referralMinPayout'>,
  deps: { db: Database; logger: Logger; gateway?: PayoutGateway },
): PayoutContext {
  return {
    db: deps.db,
    gateway: deps.gateway ?? gatewayFromConfig(config),
    minPayout: config.referralMinPayout,
    logger: deps.logger,
  };
}

/** One purchase to process, as part of a batch. */
export interface PayoutRequest {
  purchaseId: string;
  /** The last attempt the caller will make: a failure leaves the purchase `failed`, not `queued`. */
  finalAttempt?: boolean;
  /** Logger for this purchase's lines (e.g. carrying the job id); defaults to the context's. */
  logger?: Logger;
}
