import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigWatcher } from '../../../src/config/watcher.js';
import type { Snapshot } from '../../../src/config/snapshot.js';
import { parseCli } from '../../../src/cli.js';
import { builtinFilterRegistry } from '../../../src/filters/index.js';

const doc = (name: string, maxInFlight: number | string) =>
  `apiVersion: capa.io/v1\nkind: FlowControlPolicy\nmetadata: { name: ${name} }\nspec:\n  concurrency: { maxInFlight: ${maxInFlight} }\n`;

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('--policy-dir', () => {
  it('is repeatable and optional', () => {
    expect(parseCli(['--policy-dir', 'a', '--policy-dir', '/b'], {}).policyDirs).toEqual(['a', '/b']);
    expect(parseCli([], {}).policyDirs).toEqual([]);
  });
});

describe('ConfigWatcher and policy directories', () => {
  let watcher: ConfigWatcher | undefined;
  const dirs: string[] = [];
  afterEach(() => {
    watcher?.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('rebuilds the Snapshot when a policy file changes; a bad edit keeps the previous version', async () => {
    const cfgDir = mkdtempSync(join(tmpdir(), 'capa-watch-'));
    const polDir = mkdtempSync(join(tmpdir(), 'capa-pol-'));
    dirs.push(cfgDir, polDir);
    const file = join(cfgDir, 'sidecar.yaml');
    writeFileSync(file, 'drainTime: 1s\n');
    writeFileSync(join(polDir, 'a.yaml'), doc('a', 5));
    const snaps: Snapshot[] = [];
    const warnings: string[] = [];
    watcher = new ConfigWatcher(
      file,
      { filters: builtinFilterRegistry(), env: {}, debounceMs: 20, policyDirs: [polDir] },
      { onSnapshot: (s) => snaps.push(s), onError: () => {} },
      { info() {}, warn: (_o, msg) => warnings.push(msg ?? '') },
    );
    const first = watcher.start();
    expect(first.flowControl.policies.map((p) => p.name)).toEqual(['a']);

    writeFileSync(join(polDir, 'b.yml'), doc('b', 7));
    await waitFor(() => snaps.some((s) => s.flowControl.policies.length === 2));

    writeFileSync(join(polDir, 'a.yaml'), doc('a', 'x'));
    await waitFor(() => snaps.some((s) => s.flowControl.rejected.length === 1));
    const cur = watcher.current.flowControl;
    expect(cur.policies.map((p) => [p.name, p.stale])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    expect(cur.rejected[0]!.errors[0]).toMatch(/a\.yaml:5:31: spec\.concurrency\.maxInFlight: /);
    expect(warnings).toContain('flow-control policy rejected; its previous version stays in force');

    const n = snaps.length;
    writeFileSync(join(polDir, 'notes.txt'), 'ignored');
    await new Promise((r) => setTimeout(r, 150));
    expect(snaps.length).toBe(n);
  });
});
