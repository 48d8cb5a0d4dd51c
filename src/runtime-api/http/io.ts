/** Request/response plumbing shared by the runtime API's handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DaprHttpError, malformed } from './errors.js';
import type { Reply } from './state.js';

export type { Reply } from './state.js';

/** Dapr's default `--dapr-http-max-request-size` (4 MB). */
export const MAX_BODY = 4 * 1024 * 1024;

export const NO_CONTENT: Reply = { status: 204 };

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new DaprHttpError('ERR_BODY_TOO_LARGE', `request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = (await readBody(req)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw malformed((e as Error).message);
  }
}

export function json(status: number, v: unknown): Reply {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) };
}

export function send(res: ServerResponse, r: Reply): void {
  const headers: Record<string, string | number> = { ...r.headers };
  if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** `?metadata.ttlInSeconds=10` → {ttlInSeconds: '10'}. */
export function queryMetadata(q: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of q) if (k.startsWith('metadata.')) out[k.slice(9)] = v;
  return out;
}

/** A JSON object field as string → string (non-strings JSON-encoded); throws 400 naming `at`. */
export function stringMap(v: unknown, at: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw malformed(`${at}: expected an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  return out;
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
