/**
 * `configuration.file`: the embedded default. Items come from a YAML file (format.ts), watched
 * with fs.watch on its directory (editors replace files by rename, which a watch on the file
 * itself would miss) plus a stat poll as a fallback (network file systems, containers where
 * inotify is absent), so subscribers hear of an edit within a second. A file that stops parsing
 * keeps the last good items and logs an error naming the file and line.
 *
 * WRITABLE: save/delete edit the file (re-read at that moment, so concurrent hand edits are not
 * lost), write a temporary file next to it and rename it over, then notify subscribers. Reloads
 * and writes run one at a time.
 */
import { randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ComponentBackendError, ComponentRequestError } from '../../errors.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { checkKeys, deliver, matches, newWatchId } from '../query.js';
import type { ConfigurationFeature, ConfigurationItem, ConfigurationQuery, ConfigurationStore, ConfigurationWatch } from '../store.js';
import { fileConfigurationMetadata, type FileConfigurationMetadata } from './config.js';
import { ConfigFileError, editConfigFile, parseConfigFile, type ItemInput, type Items } from './format.js';

const FEATURES: readonly ConfigurationFeature[] = ['WRITABLE'];

interface Subscription {
  readonly q: ConfigurationQuery;
  readonly onChange: (items: ConfigurationItem[]) => void;
}

export class FileConfigurationStore implements ConfigurationStore {
  private items: Items = new Map();
  private goodText: string | null = null;
  private badText: string | null = null;
  private fileError = '';
  private started = false;
  private watcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private statSig = '';
  private queue: Promise<unknown> = Promise.resolve();
  private readonly subs = new Map<string, Subscription>();
  private readonly file: string;
  private readonly dir: string;

  constructor(
    private readonly m: FileConfigurationMetadata,
    private readonly ctx: ComponentContext,
  ) {
    this.file = m.path;
    this.dir = dirname(m.path);
  }

  // === impl Component ===

  async init(): Promise<void> {
    if (this.started) return;
    const dir = await stat(this.dir).catch(() => null);
    if (!dir?.isDirectory()) throw new ComponentBackendError(`configuration file ${this.file}: directory ${this.dir} does not exist`);
    this.statSig = await this.signature();
    await this.enqueue(() => this.reload(true));
    this.startWatching();
    this.started = true;
  }

  async close(): Promise<void> {
    this.started = false;
    this.watcher?.close();
    this.watcher = null;
    if (this.poller) clearInterval(this.poller);
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.poller = this.reloadTimer = null;
    this.subs.clear();
  }

  /** Still serving (the last good items) while the file is broken; the error says why. */
  status(): { ready: boolean; error?: string } {
    if (!this.started) return { ready: false, error: `${this.file} is not loaded` };
    return this.fileError ? { ready: true, error: this.fileError } : { ready: true };
  }

  features(): readonly ConfigurationFeature[] {
    return FEATURES;
  }

  // === impl ConfigurationStore ===

  async get(q: ConfigurationQuery): Promise<ConfigurationItem[]> {
    checkKeys(q.keys, 'get');
    const found = q.keys.length > 0 ? q.keys.map((k) => this.items.get(k)) : [...this.items.values()];
    return found.filter((i): i is ConfigurationItem => i !== undefined && matches(q, i));
  }

  async save(items: readonly ItemInput[]): Promise<void> {
    for (const i of items) {
      if (typeof i.key !== 'string' || i.key === '') throw new ComponentRequestError('save: an item has an empty key');
      if (typeof i.value !== 'string') throw new ComponentRequestError(`save: the value of ${JSON.stringify(i.key)} must be a string`);
    }
    if (items.length === 0) return;
    await this.write((text) => editConfigFile(this.file, text, items, []));
  }

  async delete(q: ConfigurationQuery): Promise<void> {
    checkKeys(q.keys, 'delete');
    if (q.keys.length === 0) throw new ComponentRequestError('delete: keys is empty');
    await this.write((text) => {
      const current = parseConfigFile(this.file, text);
      const remove = q.keys.filter((k) => {
        const item = current.get(k);
        return item !== undefined && matches(q, item);
      });
      return remove.length > 0 ? editConfigFile(this.file, text, [], remove) : null;
    });
  }

  async subscribe(q: ConfigurationQuery, onChange: (items: ConfigurationItem[]) => void): Promise<ConfigurationWatch> {
    checkKeys(q.keys, 'subscribe');
    const id = newWatchId();
    this.subs.set(id, { q, onChange });
    return { id, close: async () => void this.subs.delete(id) };
  }

  // === impl internals ===

  /** Reloads and writes one at a time, in order. */
  private enqueue<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private startWatching(): void {
    const base = basename(this.file);
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        if (!name || name === base) this.scheduleReload();
      });
      this.watcher.on('error', (e) => {
        this.ctx.logger.warn({ component: this.ctx.name, file: this.file, error: e.message }, 'configuration.file: watching failed; polling only');
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (e) {
      this.ctx.logger.warn({ component: this.ctx.name, file: this.file, error: (e as Error).message }, 'configuration.file: cannot watch; polling only');
    }
    this.poller = setInterval(() => void this.poll(), this.m.pollIntervalMs);
    this.poller.unref();
  }

  private async poll(): Promise<void> {
    const sig = await this.signature();
    if (sig === this.statSig) return;
    this.statSig = sig;
    this.scheduleReload();
  }

  /** Editors write in several steps; wait for them to settle. */
  private scheduleReload(): void {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      if (this.started) void this.enqueue(() => this.reload(false));
    }, 25);
  }

  private async signature(): Promise<string> {
    const s = await stat(this.file).catch(() => null);
    return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : 'missing';
  }

  private async readText(): Promise<string> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw new ComponentBackendError(`cannot read ${this.file}: ${(e as Error).message}`, e);
    }
  }

  private async reload(initial: boolean): Promise<void> {
    let text: string;
    try {
      text = await this.readText();
    } catch (e) {
      if (initial) throw e;
      this.ctx.logger.error({ component: this.ctx.name, file: this.file, error: (e as Error).message }, 'configuration.file: cannot read; keeping the last good items');
      return;
    }
    if (text === this.goodText) return;
    let next: Items;
    try {
      next = parseConfigFile(this.file, text);
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e;
      this.fileError = e.message;
      if (initial) throw new ComponentBackendError(e.message);
      if (text !== this.badText) this.ctx.logger.error({ component: this.ctx.name, file: this.file, error: e.message }, 'configuration.file: the file is invalid; keeping the last good items');
      this.badText = text;
      return;
    }
    if (this.fileError) this.ctx.logger.info({ component: this.ctx.name, file: this.file }, 'configuration.file: the file is valid again');
    this.fileError = '';
    this.badText = null;
    this.goodText = text;
    this.apply(next);
  }

  /** `edit` returns the new text, or null for no change. */
  private write(edit: (text: string) => string | null): Promise<void> {
    if (!this.started) return Promise.reject(new ComponentBackendError(`configuration file ${this.file} is not loaded`));
    return this.enqueue(async () => {
      const text = await this.readText();
      let next: string | null;
      try {
        next = edit(text);
      } catch (e) {
        if (e instanceof ConfigFileError) throw new ComponentBackendError(`cannot write: ${e.message}; fix the file first`);
        throw e;
      }
      if (next === null) return;
      await this.writeAtomic(next);
      this.statSig = await this.signature();
      this.fileError = '';
      this.badText = null;
      this.goodText = next;
      this.apply(parseConfigFile(this.file, next));
    });
  }

  private async writeAtomic(text: string): Promise<void> {
    const tmp = join(this.dir, `.${basename(this.file)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
    try {
      const mode = (await stat(this.file).catch(() => null))?.mode;
      await writeFile(tmp, text, { mode: mode ?? 0o644 });
      await rename(tmp, this.file);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new ComponentBackendError(`cannot write ${this.file}: ${(e as Error).message}`, e);
    }
  }

  /** Swaps in the new items and tells each subscriber what changed under its query. */
  private apply(next: Items): void {
    const prev = this.items;
    this.items = next;
    const changed: ConfigurationItem[] = [];
    for (const [k, item] of next) if (prev.get(k)?.version !== item.version) changed.push(item);
    for (const [k, old] of prev) {
      if (!next.has(k)) changed.push({ key: k, value: '', version: old.version, group: old.group, label: old.label, deleted: true });
    }
    if (changed.length === 0) return;
    for (const s of [...this.subs.values()]) {
      deliver(s.onChange, changed.filter((i) => matches(s.q, i)), this.ctx.logger, this.ctx.name);
    }
  }
}

export const fileConfiguration: ComponentDefinition<FileConfigurationStore, FileConfigurationMetadata> = {
  type: 'configuration.file',
  block: 'configuration',
  version: 'v1',
  metadataSchema: fileConfigurationMetadata,
  create: (m, ctx) => new FileConfigurationStore(m, ctx),
};
