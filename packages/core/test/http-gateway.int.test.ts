import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { gatewayFromConfig, httpGateway, ledgerGateway, type TransferRequest } from '@referrals/core';
import { freePort } from '@referrals/testing';
import { useFakeTreasury } from '@referrals/testing/vitest';

const treasury = useFakeTreasury();
beforeEach(() => treasury.setMode({ kind: 'succeed' }));

const request = (): TransferRequest => {
  const purchaseId = randomUUID();
  return {
    idempotencyKey: `${purchaseId}:direct`,
    beneficiaryId: randomUUID(),
    amount: 1000,
    currency: 'EUR',
    purchaseId,
  };
};

const transfer = (req = request(), url = treasury.url) => {
  const gateway = httpGateway({ treasuryUrl: url, timeoutMs: 2_000 });
  if (gateway.kind !== 'external') throw new Error('the http gateway is external');
  return gateway.transfer(req);
};

describe('httpGateway', () => {
  it('posts the transfer with its key, with or without a slash after the treasury URL', async () => {
    for (const url of [treasury.url, `${treasury.url}/`]) {
      const req = request();
      const { reference } = await transfer(req, url);
      expect(reference).toEqual(expect.any(String));
      expect(treasury.requestsFor(req.idempotencyKey)).toBe(1);
      expect(treasury.accepted().find((a) => a.idempotencyKey === req.idempotencyKey)).toMatchObject({
        reference,
        beneficiaryId: req.beneficiaryId,
        amount: 1000,
        currency: 'EUR',
      });
    }
  });

  it.each([
    {
      status: 502,
      body: '<html>Bad Gateway</html>',
      message: 'treasury answered 502 without a JSON body',
      kind: 'transient',
    },
    { status: 404, body: 'no such route', message: 'treasury answered 404 without a JSON body', kind: 'permanent' },
    { status: 201, body: '{"ok":true}', message: 'treasury answered 201 without a reference', kind: 'transient' },
    { status: 200, body: '{"reference":""}', message: 'treasury answered 200 without a reference', kind: 'transient' },
    { status: 200, body: '{"reference":42}', message: 'treasury answered 200 without a reference', kind: 'transient' },
    { status: 200, body: 'null', message: 'treasury answered 200 without a reference', kind: 'transient' },
    { status: 200, body: '"ref_1"', message: 'treasury answered 200 without a reference', kind: 'transient' },
    { status: 500, body: '{"detail":"down"}', message: 'treasury answered 500', kind: 'transient' },
    { status: 503, body: 'null', message: 'treasury answered 503', kind: 'transient' },
    { status: 500, body: '"oops"', message: 'treasury answered 500', kind: 'transient' },
    {
      status: 422,
      body: '{"error":{"code":"closed","message":"account closed"}}',
      message: 'treasury answered 422: {"code":"closed","message":"account closed"}',
      kind: 'permanent',
    },
  ])('turns a $status answer of $body into a $kind TransferError', async (c) => {
    treasury.setMode({ kind: 'garble', status: c.status, body: c.body });
    const error = await transfer().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TransferError', message: c.message, kind: c.kind });
    // A 2xx we cannot read is retried as a transient failure, whatever its status.
    expect((error as { status?: number }).status).toBe(c.message.endsWith('reference') ? undefined : c.status);
  });

  it('keeps a long refusal to 500 characters', async () => {
    treasury.setMode({ kind: 'refuse', status: 422, when: () => true, message: () => 'x'.repeat(2_000) });
    const error = (await transfer().catch((e: unknown) => e)) as Error;
    expect(error.message).toHaveLength(500);
    expect(error.message.startsWith('treasury answered 422: {')).toBe(true);
  });

  it('says when the treasury cannot be reached or does not answer in time', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    await expect(transfer(request(), closed)).rejects.toMatchObject({
      name: 'TransferError',
      kind: 'transient',
      message: expect.stringMatching(/^treasury unreachable: .*ECONNREFUSED/),
    });
    treasury.setMode({ kind: 'hang' });
    const gateway = httpGateway({ treasuryUrl: treasury.url, timeoutMs: 200 });
    if (gateway.kind !== 'external') throw new Error('the http gateway is external');
    await expect(gateway.transfer(request())).rejects.toMatchObject({
      name: 'TransferError',
      kind: 'transient',
      message: 'treasury did not answer within 200 ms',
    });
  });
});

describe('gatewayFromConfig', () => {
  it('pays through the configured gateway', () => {
    expect(gatewayFromConfig({ payoutGateway: 'ledger', treasuryUrl: undefined, treasuryTimeoutMs: 5_000 })).toBe(
      ledgerGateway,
    );
    expect(
      gatewayFromConfig({ payoutGateway: 'http', treasuryUrl: treasury.url, treasuryTimeoutMs: 1_234 }),
    ).toMatchObject({ kind: 'external', name: 'http', timeoutMs: 1_234 });
  });
});
