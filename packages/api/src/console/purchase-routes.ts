import type { Static } from '@sinclair/typebox';
import {
  getPurchase,
  getReferralPayoutStatus,
  handlesOf,
  MAX_NOTE_LENGTH,
  validateNote,
  writeOffReferralPayouts,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { processForOperator } from '../routes/referral-payouts.ts';
import { NoticeQuery, PurchaseParams, ReasonBody } from './form-schemas.ts';
import { page } from './render.ts';

const hide = { hide: true };

/** One purchase's page, and the repairs it offers: retry, and write-off after a confirmation step. */
export function purchaseRoutes(app: TypedApp, ctx: RouteContext): void {
  app.get(
    '/console/purchases/:id',
    { schema: { ...hide, params: PurchaseParams, querystring: NoticeQuery } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof PurchaseParams>;
      return page(reply, request, 'purchase.eta', await purchaseModel(id));
    },
  );

  app.post(
    '/console/purchases/:id/write-off',
    { schema: { ...hide, params: PurchaseParams, body: ReasonBody } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof PurchaseParams>;
      const body = request.body as Static<typeof ReasonBody>;
      const note = validateNote(body.reason);
      if (body.confirm !== 'yes') {
        // The confirmation step: nothing is written until the operator confirms on this page.
        return page(reply, request, 'write-off-confirm.eta', {
          ...(await purchaseModel(id)),
          title: 'Confirm write-off',
          note,
        });
      }
      await writeOffReferralPayouts(ctx.db, id, { actor: 'console', operator: request.consoleSession!.operator, note });
      return reply.redirect(`/console/purchases/${id}?notice=written-off`, 303);
    },
  );

  app.post('/console/purchases/:id/retry', { schema: { ...hide, params: PurchaseParams } }, async (request, reply) => {
    const { id } = request.params as Static<typeof PurchaseParams>;
    const operator = request.consoleSession!.operator;
    await processForOperator(
      ctx,
      id,
      { actor: 'console', operator },
      ctx.logger.child({ reqId: request.id, operator }),
    );
    return reply.redirect(`/console/purchases/${id}?notice=retried`, 303);
  });

  async function purchaseModel(id: string) {
    const [purchase, status] = await Promise.all([getPurchase(ctx.db, id), getReferralPayoutStatus(ctx.db, id)]);
    const handles = await handlesOf(ctx.db, [purchase.buyerId, ...status.payouts.map((p) => p.beneficiaryId)]);
    return { title: `Purchase ${id}`, purchase, status, handles, maxNote: MAX_NOTE_LENGTH };
  }
}
