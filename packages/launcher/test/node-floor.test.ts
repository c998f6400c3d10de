import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_FLOOR, nodeFloorProblem } from '../../../scripts/require-node.mjs';
import { REPO_ROOT } from '../src/local-setup.ts';

describe('the Node.js floor', () => {
  it('refuses the 22.x releases that cannot run .ts without a flag, and says what to install', () => {
    expect(nodeFloorProblem('v22.17.1')).toMatch(
      /v22\.17\.1 is too old.*>= 22\.18\.0[\s\S]*Install a current Node\.js 22/,
    );
    expect(nodeFloorProblem('v20.19.0')).toContain('too old');
    expect(nodeFloorProblem('v22.18.0')).toBeUndefined();
    expect(nodeFloorProblem('v24.1.0')).toBeUndefined();
    expect(nodeFloorProblem(process.version)).toBeUndefined();
  });

  it('is the one package.json declares and the README states', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const floor = NODE_FLOOR.replace(/\.0$/, '');
    expect(manifest.engines.node).toBe(`>=${floor}`);
    expect(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')).toContain(`Node.js >= ${floor}`);
  });
});
