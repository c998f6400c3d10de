import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findUntraversableParent } from '../src/embedded-postgres.ts';

describe('findUntraversableParent', () => {
  const root = mkdtempSync('/tmp/referrals-parents-');
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const postgres = { uid: 4242, gid: 4242 };

  it('names the first parent the postgres user cannot enter', () => {
    chmodSync(root, 0o700);
    mkdirSync(join(root, 'inner'), { mode: 0o755 });
    expect(findUntraversableParent(join(root, 'inner', 'postgres'), postgres)).toEqual({ dir: root, mode: 0o700 });
  });

  it('accepts parents that everyone may traverse, including ones not created yet', () => {
    chmodSync(root, 0o755);
    expect(findUntraversableParent(join(root, 'inner', 'not-yet', 'postgres'), postgres)).toBeUndefined();
  });
});
