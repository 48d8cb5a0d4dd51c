/**
 * Hot reload of the YAML file. The file's directory is watched, not the file: editors and
 * Kubernetes ConfigMaps replace a file by rename (ConfigMaps swap the `..data` symlink), which
 * a watch on the file itself would lose. Events are debounced (~100 ms), unchanged text is
 * ignored, and a bad edit is reported while the last good Snapshot stays in force.
 *
 * The policy directories (`flowControl.policyDirs`, `--policy-dir`) are watched too: a change of
 * any `*.yaml` in them rebuilds the Snapshot. Policy documents stand alone (policies.ts): an
 * invalid one is logged and listed as rejected while its last good version stays in force.
 */
import { watch, realpathSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { RejectedPolicy, Snapshot } from './snapshot.js';
import { loadConfigText, readConfigText, type LoadOptions, type Loaded } from './load.js';
import { readPolicySources, type PolicySource } from './policies.js';

export interface ConfigWatcherCallbacks {
  onSnapshot(s: Snapshot): void;
  onError(err: ConfigError): void;
}

/** The few logger methods used (pino's Logger fits). */
export interface ConfigWatcherLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type WatcherOptions = Omit<LoadOptions, 'version' | 'previousFlowControl'> & {
  /** Debounce of file events, ms (default 100). */
  readonly debounceMs?: number;
};

const NO_LOG: ConfigWatcherLog = { info() {}, warn() {} };

export class ConfigWatcher {
  private readonly path: string;
  private readonly opts: WatcherOptions;
  private readonly callbacks: ConfigWatcherCallbacks;
  private readonly log: ConfigWatcherLog;
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private snapshot: Snapshot | undefined;
  /** Text of the current snapshot, and of the last attempt (good or bad). */
  private goodText = '';
  private lastText = '';
  /** The policy files of the current snapshot. */
  private goodPolicies = '';
  private lastPolicies = '';
  private loads = 0;
  private closed = false;

  constructor(path: string, opts: WatcherOptions, callbacks: ConfigWatcherCallbacks, log: ConfigWatcherLog = NO_LOG) {
    this.path = path;
    this.opts = opts;
    this.callbacks = callbacks;
    this.log = log;
  }

  /** Load the file (throws ConfigError when it is bad) and start watching. */
  start(): Snapshot {
    const text = readConfigText(this.path);
    const loaded = this.load(text);
    this.accept(text, loaded);
    this.reportPolicies(loaded.snapshot, []);
    this.watchDirs();
    return loaded.snapshot;
  }

  /** The Snapshot in force. */
  get current(): Snapshot {
    if (!this.snapshot) throw new Error('ConfigWatcher.start() was not called');
    return this.snapshot;
  }

  /**
   * Re-read the file now (SIGHUP). Returns false when it is bad (onError was called and the last
   * good Snapshot stays); true when it was applied or had not changed.
   */
  reload(): boolean {
    return this.check(true);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  // === impl ConfigWatcher ===

  private load(text: string): Loaded {
    return loadConfigText(text, this.path, { ...this.opts, version: String(this.loads + 1), previousFlowControl: this.snapshot?.flowControl });
  }

  private accept(text: string, loaded: Loaded): void {
    this.loads++;
    this.snapshot = loaded.snapshot;
    this.goodText = text;
    this.lastText = text;
    this.goodPolicies = policyKey(loaded.policySources);
    this.lastPolicies = this.goodPolicies;
  }

  /** Log rejected policy documents that were not rejected (with the same errors) before. */
  private reportPolicies(s: Snapshot, before: readonly RejectedPolicy[]): void {
    const seen = new Set(before.map((r) => JSON.stringify(r)));
    for (const r of s.flowControl.rejected) {
      if (seen.has(JSON.stringify(r))) continue;
      this.log.warn(
        { source: r.source, policy: r.name, details: r.errors, keptPrevious: r.keptPrevious },
        r.keptPrevious ? 'flow-control policy rejected; its previous version stays in force' : 'flow-control policy rejected; the other policies stay in force',
      );
    }
  }

  /** `force`: re-evaluate a text that already failed (explicit reload); events skip it. */
  private check(force: boolean): boolean {
    if (this.closed) return false;
    let text: string;
    try {
      text = readConfigText(this.path);
    } catch (err) {
      // Between an editor's delete and create the file is briefly gone; the create brings another event.
      if (!force) {
        this.log.warn({ file: this.path, err: (err as Error).message }, 'config file not readable; keeping the current config');
        return false;
      }
      this.fail(err as ConfigError);
      return false;
    }
    // Policy files of the directories in force (a changed main file may name others: it reloads anyway).
    const policies = policyKey(readPolicySources(this.snapshot?.flowControl.policyDirs ?? []).sources);
    if (text === this.goodText && policies === this.goodPolicies) {
      this.lastText = text;
      this.lastPolicies = policies;
      return true;
    }
    if (text === this.lastText && policies === this.lastPolicies && !force) return false;
    this.lastText = text;
    this.lastPolicies = policies;
    try {
      const before = this.snapshot?.flowControl.rejected ?? [];
      const loaded = this.load(text);
      const snapshot = loaded.snapshot;
      this.accept(text, loaded);
      this.log.info({ file: this.path, version: snapshot.version, policies: snapshot.flowControl.policies.length }, 'config reloaded');
      this.reportPolicies(snapshot, before);
      this.watchDirs();
      this.callbacks.onSnapshot(snapshot);
      return true;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.fail(err);
      return false;
    }
  }

  private fail(err: ConfigError): void {
    this.log.warn({ file: this.path, details: err.details }, 'config rejected; keeping the current config');
    this.callbacks.onError(err);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check(false);
    }, this.opts.debounceMs ?? 100);
    this.timer.unref();
  }

  /**
   * Watch the directory of the path and, when the path is a symlink (ConfigMap: `..data/x`), the
   * directory of its target too. Events for other files in those directories are ignored.
   */
  private watchDirs(): void {
    if (this.closed) return;
    const wanted = new Map<string, (name: string | null) => boolean>();
    const abs = resolve(this.path);
    const base = basename(abs);
    wanted.set(dirname(abs), (name) => name === null || name === base || name.startsWith('..'));
    try {
      const real = realpathSync(abs);
      if (dirname(real) !== dirname(abs)) wanted.set(dirname(real), (name) => name === null || name === basename(real));
    } catch {
      // gone for now; the directory watch sees it come back
    }
    for (const dir of this.snapshot?.flowControl.policyDirs ?? []) {
      if (!wanted.has(dir)) wanted.set(dir, (name) => name === null || name.startsWith('..') || /\.ya?ml$/.test(name));
      else {
        const main = wanted.get(dir)!;
        wanted.set(dir, (name) => main(name) || (name !== null && /\.ya?ml$/.test(name)));
      }
    }
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const [dir, relevant] of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (relevant(name === null ? null : String(name))) this.schedule();
        });
        w.on('error', (err) => this.log.warn({ dir, err: err.message }, 'config directory watch failed'));
        this.watchers.set(dir, w);
      } catch (err) {
        this.log.warn({ dir, err: (err as Error).message }, 'cannot watch config directory');
      }
    }
  }
}

function policyKey(sources: readonly PolicySource[]): string {
  return sources.map((s) => `${s.file}\n${s.text}`).join('\u0000');
}
