/**
 * The `configuration.file` format. A YAML file of items in one of two forms:
 *
 *   # a mapping: key → value, or key → {value, group, label, tags}
 *   greeting: hello
 *   retries: 3
 *   feature-x: {value: "on", group: web, label: prod, tags: {owner: team-a}}
 *
 *   # or a list of items
 *   - {key: greeting, value: hello}
 *   - {key: feature-x, value: "on", group: web, tags: {owner: team-a}}
 *
 * Keys are unique in the file. Values are read as written (YAML's failsafe schema: `1.0` is
 * "1.0", `true` is "true", an empty value is ""). An item's version is a hash of its content, so
 * every sidecar reading the file agrees on it, and it changes exactly when the item changes.
 * Writes edit the YAML document in place (comments and the file's form are kept).
 */
import { createHash } from 'node:crypto';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document, type Node, type YAMLMap } from 'yaml';
import type { ConfigurationItem } from '../store.js';

export type Items = Map<string, ConfigurationItem>;
export type ItemInput = Omit<ConfigurationItem, 'version' | 'deleted'>;

/** The file cannot be used; the message names the file and the line. */
export class ConfigFileError extends Error {}

const FIELDS = new Set(['value', 'group', 'label', 'tags']);

function load(file: string, text: string): { doc: Document; where: (n: unknown) => string } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) throw new ConfigFileError(`${file}: invalid YAML: ${err.message.split('\n')[0]!.replace(/:$/, '')}`);
  const where = (n: unknown): string => {
    const range = (n as Node | null)?.range;
    if (!range) return file;
    const at = lines.linePos(range[0]);
    return `${file} line ${at.line}, column ${at.col}`;
  };
  return { doc, where };
}

/** Parses the whole file; throws ConfigFileError naming the file and line of the first problem. */
export function parseConfigFile(file: string, text: string): Items {
  const { doc, where } = load(file, text);
  const root = doc.contents;
  const items: Items = new Map();
  const add = (item: ItemInput, at: unknown): void => {
    if (item.key === '') throw new ConfigFileError(`${where(at)}: an item has an empty key`);
    if (items.has(item.key)) throw new ConfigFileError(`${where(at)}: key ${JSON.stringify(item.key)} appears twice`);
    items.set(item.key, withVersion(item));
  };
  if (root === null || (isScalar(root) && (root.value ?? '') === '')) return items;
  if (isMap(root)) {
    for (const pair of root.items) {
      if (!isScalar(pair.key)) throw new ConfigFileError(`${where(pair.key)}: a key must be a string`);
      const key = String(pair.key.value ?? '');
      add({ key, ...readItem(pair.value, where, false) }, pair.key);
    }
    return items;
  }
  if (isSeq(root)) {
    for (const node of root.items) {
      const item = readItem(node, where, true);
      add(item as ItemInput, node);
    }
    return items;
  }
  throw new ConfigFileError(`${where(root)}: expected a mapping of key: value, or a list of {key, value, group, label, tags}`);
}

function readItem(node: unknown, where: (n: unknown) => string, listForm: boolean): Omit<ItemInput, 'key'> & { key?: string } {
  if (!listForm && (node === null || isScalar(node))) return { value: String((node as { value?: unknown } | null)?.value ?? '') };
  if (!isMap(node)) throw new ConfigFileError(`${where(node)}: expected ${listForm ? '{key, value, ...}' : 'a value or {value, group, label, tags}'}`);
  const out: { key?: string; value: string; group?: string; label?: string; tags?: Record<string, string> } = { value: '' };
  for (const pair of node.items) {
    const field = isScalar(pair.key) ? String(pair.key.value) : '';
    if (field === 'tags') {
      out.tags = readTags(pair.value, where);
    } else if (FIELDS.has(field) || (listForm && field === 'key')) {
      if (pair.value !== null && !isScalar(pair.value)) throw new ConfigFileError(`${where(pair.value)}: '${field}' must be a string`);
      (out as Record<string, unknown>)[field] = String((pair.value as { value?: unknown } | null)?.value ?? '');
    } else {
      throw new ConfigFileError(`${where(pair.key)}: unknown field '${field}' (expected ${listForm ? 'key, ' : ''}value, group, label, tags)`);
    }
  }
  if (listForm && out.key === undefined) throw new ConfigFileError(`${where(node)}: an item has no 'key'`);
  return out;
}

function readTags(node: unknown, where: (n: unknown) => string): Record<string, string> {
  if (node === null) return {};
  if (!isMap(node)) throw new ConfigFileError(`${where(node)}: 'tags' must be a mapping of strings`);
  const tags: Record<string, string> = {};
  for (const pair of node.items) {
    if (!isScalar(pair.key) || (pair.value !== null && !isScalar(pair.value))) throw new ConfigFileError(`${where(pair.key)}: 'tags' must be a mapping of strings`);
    tags[String(pair.key.value)] = String((pair.value as { value?: unknown } | null)?.value ?? '');
  }
  return tags;
}

export function withVersion(item: ItemInput): ConfigurationItem {
  const tags = item.tags ? Object.entries(item.tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
  const version = createHash('sha256')
    .update(JSON.stringify([item.value, item.group ?? '', item.label ?? '', tags]))
    .digest('hex')
    .slice(0, 16);
  const out: { -readonly [K in keyof ConfigurationItem]: ConfigurationItem[K] } = { key: item.key, value: item.value, version };
  if (item.group) out.group = item.group;
  if (item.label) out.label = item.label;
  if (item.tags && Object.keys(item.tags).length > 0) out.tags = { ...item.tags };
  return out;
}

/** The file's text with `save` written and `remove` deleted, in the file's own form. */
export function editConfigFile(file: string, text: string, save: readonly ItemInput[], remove: readonly string[]): string {
  parseConfigFile(file, text);
  const { doc } = load(file, text);
  if (doc.contents === null || isScalar(doc.contents)) doc.contents = doc.createNode({}) as YAMLMap;
  const root = doc.contents;
  if (isMap(root)) {
    const indexOf = (key: string): number => root.items.findIndex((p) => isScalar(p.key) && String(p.key.value) === key);
    for (const item of save) {
      const node = doc.createNode(extras(item) ? { value: item.value, ...extras(item) } : item.value);
      const i = indexOf(item.key);
      if (i >= 0) root.items[i]!.value = keepComments(root.items[i]!.value, node);
      else root.items.push(doc.createPair(item.key, node));
    }
    for (const key of remove) {
      const i = indexOf(key);
      if (i >= 0) root.items.splice(i, 1);
    }
  } else if (isSeq(root)) {
    const indexOf = (key: string): number =>
      root.items.findIndex((n) => isMap(n) && isScalar(n.get('key', true)) && String((n.get('key', true) as { value: unknown }).value) === key);
    for (const item of save) {
      const node = doc.createNode({ key: item.key, value: item.value, ...extras(item) });
      const i = indexOf(item.key);
      if (i >= 0) root.items[i] = keepComments(root.items[i], node);
      else root.items.push(node);
    }
    for (const key of remove) {
      const i = indexOf(key);
      if (i >= 0) root.items.splice(i, 1);
    }
  }
  return doc.toString();
}

/** The comments around a replaced item stay with its replacement. */
function keepComments(old: unknown, node: Node): Node {
  if (isNode(old)) {
    if (old.commentBefore) node.commentBefore = old.commentBefore;
    if (old.comment) node.comment = old.comment;
  }
  return node;
}

function extras(item: ItemInput): { group?: string; label?: string; tags?: Record<string, string> } | undefined {
  const e: { group?: string; label?: string; tags?: Record<string, string> } = {};
  if (item.group) e.group = item.group;
  if (item.label) e.label = item.label;
  if (item.tags && Object.keys(item.tags).length > 0) e.tags = { ...item.tags };
  return Object.keys(e).length > 0 ? e : undefined;
}
