/**
 * Hot reload of the YAML file. The file's directory is watched, not the file: editors and
 * Kubernetes ConfigMaps replace a file by rename (ConfigMaps swap the `..data` symlink), which
 * a watch on the file itself would lose. Events are debounced (~100 ms), unchanged text is
 * ignored, and a bad edit is reported while the last good Snapshot stays in force.
 */
import { watch, realpathSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Snapshot } from './snapshot.js';
import { loadConfigText, readConfigText, type LoadOptions } from './load.js';

export interface ConfigWatcherCallbacks {
  onSnapshot(s: Snapshot): void;
  onError(err: ConfigError): void;
}

/** The few logger methods used (pino's Logger fits). */
export interface ConfigWatcherLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type WatcherOptions = Omit<LoadOptions, 'version'> & {
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
    const { snapshot } = loadConfigText(text, this.path, { ...this.opts, version: String(this.loads + 1) });
    this.accept(text, snapshot);
    this.watchDirs();
    return snapshot;
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

  private accept(text: string, snapshot: Snapshot): void {
    this.loads++;
    this.snapshot = snapshot;
    this.goodText = text;
    this.lastText = text;
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
    if (text === this.goodText) {
      this.lastText = text;
      return true;
    }
    if (text === this.lastText && !force) return false;
    this.lastText = text;
    try {
      const { snapshot } = loadConfigText(text, this.path, { ...this.opts, version: String(this.loads + 1) });
      this.accept(text, snapshot);
      this.log.info({ file: this.path, version: snapshot.version }, 'config reloaded');
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
