import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigWatcher } from '../../../src/config/watcher.js';
import type { Snapshot } from '../../../src/config/snapshot.js';
import { ConfigError } from '../../../src/errors.js';
import { registry } from './helpers.js';

const cfg = (drain: string) => `drainTime: ${drain}\n`;

async function waitFor(cond: () => boolean, ms = 1000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConfigWatcher', () => {
  let dir: string;
  let file: string;
  let snapshots: Snapshot[];
  let errors: ConfigError[];
  let watcher: ConfigWatcher | undefined;

  const make = (path = file) => {
    watcher = new ConfigWatcher(path, { filters: registry, env: {}, debounceMs: 50 }, { onSnapshot: (s) => snapshots.push(s), onError: (e) => errors.push(e) });
    return watcher;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'capa-watch-'));
    file = join(dir, 'sidecar.yaml');
    snapshots = [];
    errors = [];
    writeFileSync(file, cfg('1s'));
  });

  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('start() loads the file; a bad initial file throws', () => {
    const s = make().start();
    expect(s.version).toBe('1');
    expect(s.drainTimeMs).toBe(1000);
    expect(watcher!.current).toBe(s);
    writeFileSync(join(dir, 'bad.yaml'), 'drainTime: soon\n');
    expect(() => make(join(dir, 'bad.yaml')).start()).toThrow(ConfigError);
  });

  it('writing a new valid file delivers a new Snapshot within 1 s', async () => {
    make().start();
    writeFileSync(file, cfg('2s'));
    await waitFor(() => snapshots.length === 1);
    expect(snapshots[0]!.version).toBe('2');
    expect(snapshots[0]!.drainTimeMs).toBe(2000);
    expect(watcher!.current).toBe(snapshots[0]);
  });

  it('an invalid edit calls onError and keeps the current Snapshot', async () => {
    const first = make().start();
    writeFileSync(file, 'drainTime: soon\n');
    await waitFor(() => errors.length === 1);
    expect(errors[0]!.details[0]).toMatch(/sidecar\.yaml:1:12: drainTime: expected a duration/);
    expect(watcher!.current).toBe(first);
    expect(snapshots).toEqual([]);
    // Fixing it afterwards works, and the version counts successful loads only.
    writeFileSync(file, cfg('3s'));
    await waitFor(() => snapshots.length === 1);
    expect(snapshots[0]!.version).toBe('2');
  });

  it('sees an atomic rename-replace', async () => {
    make().start();
    const tmp = join(dir, '.sidecar.yaml.tmp');
    writeFileSync(tmp, cfg('4s'));
    renameSync(tmp, file);
    await waitFor(() => snapshots.length === 1);
    expect(snapshots[0]!.drainTimeMs).toBe(4000);
    // and a second replace too (the watch is on the directory, not the replaced inode)
    writeFileSync(tmp, cfg('5s'));
    renameSync(tmp, file);
    await waitFor(() => snapshots.length === 2);
    expect(watcher!.current.drainTimeMs).toBe(5000);
  });

  it('sees a Kubernetes ConfigMap ..data symlink swap', async () => {
    const mount = join(dir, 'mount');
    mkdirSync(join(mount, '..2024_01'), { recursive: true });
    writeFileSync(join(mount, '..2024_01', 'sidecar.yaml'), cfg('1s'));
    symlinkSync('..2024_01', join(mount, '..data'));
    symlinkSync('..data/sidecar.yaml', join(mount, 'sidecar.yaml'));
    make(join(mount, 'sidecar.yaml')).start();

    mkdirSync(join(mount, '..2024_02'));
    writeFileSync(join(mount, '..2024_02', 'sidecar.yaml'), cfg('6s'));
    symlinkSync('..2024_02', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    rmSync(join(mount, '..2024_01'), { recursive: true });
    await waitFor(() => snapshots.length === 1);
    expect(snapshots[0]!.drainTimeMs).toBe(6000);
  });

  it('ignores writes that do not change the text, and other files', async () => {
    make().start();
    writeFileSync(file, cfg('1s'));
    writeFileSync(join(dir, 'other.yaml'), cfg('9s'));
    await sleep(300);
    expect(snapshots).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('reload() applies a change at once and keeps the last good Snapshot on error', async () => {
    const w = make();
    w.start();
    writeFileSync(file, cfg('7s'));
    expect(w.reload()).toBe(true);
    expect(w.current.drainTimeMs).toBe(7000);
    expect(w.current.version).toBe('2');
    expect(w.reload()).toBe(true); // unchanged: nothing new
    await sleep(200); // the file event arrives too, and sees nothing new
    expect(snapshots.map((s) => s.version)).toEqual(['2']);

    writeFileSync(file, 'mode: ambient\n');
    expect(w.reload()).toBe(false);
    expect(errors).toHaveLength(1);
    expect(w.current.drainTimeMs).toBe(7000);
  });

  it('close() stops watching', async () => {
    make().start();
    watcher!.close();
    writeFileSync(file, cfg('8s'));
    await sleep(250);
    expect(snapshots).toEqual([]);
  });
});
