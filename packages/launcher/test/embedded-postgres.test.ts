import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterLocation, findUntraversableParent, sharedDirectory } from '../src/embedded-postgres.ts';

const postgres = { uid: 4242, gid: 4242 };

describe('findUntraversableParent', () => {
  const root = mkdtempSync('/tmp/referrals-parents-');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

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

describe('clusterLocation', () => {
  const root = mkdtempSync('/tmp/referrals-cluster-');
  chmodSync(root, 0o755);
  const home = join(root, 'home');
  const shared = join(root, 'shared');
  mkdirSync(home, { mode: 0o700 });
  chmodSync(home, 0o700);
  mkdirSync(shared, { mode: 0o755 });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('keeps the cluster in the data directory for a normal user, wherever that is', () => {
    expect(clusterLocation(join(home, 'clone', '.data'), { asRoot: false })).toEqual({
      dir: join(home, 'clone', '.data', 'postgres'),
    });
  });

  it('keeps it there as root when the postgres user can reach it', () => {
    expect(clusterLocation(join(shared, 'clone', '.data'), { asRoot: true, ids: postgres, roots: [shared] })).toEqual({
      dir: join(shared, 'clone', '.data', 'postgres'),
    });
  });

  it('moves it, as root in a 0700 home, to a traversable shared directory, the same one on every run', () => {
    const dataDir = join(home, 'clone', '.data');
    const first = clusterLocation(dataDir, { asRoot: true, ids: postgres, roots: [join(home, 'cache'), shared] });
    expect(first.movedBecause).toEqual({ dir: home, mode: 0o700 });
    expect(first.dir).toMatch(new RegExp(`^${shared}/referral-payouts/clone-[0-9a-f]{10}/postgres$`));
    expect(findUntraversableParent(first.dir, postgres)).toBeUndefined();
    expect(clusterLocation(dataDir, { asRoot: true, ids: postgres, roots: [shared] })).toEqual(first);
    // Another checkout keeps a cluster of its own.
    expect(
      clusterLocation(join(home, 'other', '.data'), { asRoot: true, ids: postgres, roots: [shared] }).dir,
    ).not.toBe(first.dir);
  });

  it('creates the shared directory so that the postgres user may enter it, whatever the umask', () => {
    const previous = process.umask(0o077);
    try {
      mkdirSync(join(root, 'var-tmp'), { mode: 0o755 });
      chmodSync(join(root, 'var-tmp'), 0o755);
      const dir = sharedDirectory(postgres, [join(root, 'var-tmp')]);
      expect(dir).toBe(join(root, 'var-tmp', 'referral-payouts'));
      expect(statSync(dir!).mode & 0o777).toBe(0o755);
      expect(findUntraversableParent(join(dir!, 'postgres'), postgres)).toBeUndefined();
    } finally {
      process.umask(previous);
    }
  });
});
