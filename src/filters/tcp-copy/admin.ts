/**
 * Admin endpoint `/tcpcopy`: GET prints the status JSON; POST switches copying at run time,
 * `POST /tcpcopy?enabled=true&rate=0.1` (either parameter may be left out; at least one is
 * needed). A bad or unknown parameter is a 400 naming it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TcpCopy } from './tcp-copy.js';

const PARAMS = new Set(['enabled', 'rate']);

/** What an admin request asks of the TCP copy, validated; plain data so it can go to workers. */
export type TcpCopyCommand =
  | { readonly kind: 'status' }
  | { readonly kind: 'set'; readonly enabled?: boolean; readonly rate?: number }
  | { readonly kind: 'error'; readonly status: number; readonly message: string };

export function parseTcpCopyCommand(method: string | undefined, query: URLSearchParams): TcpCopyCommand {
  if (method === 'GET' || method === 'HEAD') return { kind: 'status' };
  if (method !== 'POST') return { kind: 'error', status: 405, message: 'tcpcopy: use GET for the status or POST ?enabled=true|false&rate=0..1\n' };
  for (const k of query.keys()) if (!PARAMS.has(k)) return { kind: 'error', status: 400, message: `tcpcopy: unknown parameter "${k}" (expected enabled, rate)\n` };
  let enabled: boolean | undefined;
  const e = query.get('enabled');
  if (e !== null) {
    if (e === 'true' || e === '1') enabled = true;
    else if (e === 'false' || e === '0') enabled = false;
    else return { kind: 'error', status: 400, message: `tcpcopy: enabled: expected true or false, got ${JSON.stringify(e)}\n` };
  }
  let rate: number | undefined;
  const r = query.get('rate');
  if (r !== null) {
    rate = r.trim() === '' ? NaN : Number(r);
    if (!(Number.isFinite(rate) && rate >= 0 && rate <= 1)) return { kind: 'error', status: 400, message: `tcpcopy: rate: expected a probability from 0 to 1, got ${JSON.stringify(r)}\n` };
  }
  if (enabled === undefined && rate === undefined) return { kind: 'error', status: 400, message: 'tcpcopy: enabled: expected enabled=true|false and/or rate=0..1\n' };
  return { kind: 'set', enabled, rate };
}

/** Carry out a valid command; returns the status afterwards. */
export function applyTcpCopyCommand(tc: TcpCopy, cmd: Exclude<TcpCopyCommand, { kind: 'error' }>): ReturnType<TcpCopy['status']> {
  if (cmd.kind === 'set') tc.setEnabled(cmd.enabled ?? tc.status().enabled, cmd.rate);
  return tc.status();
}

export function tcpCopyAdminHandler(tc: TcpCopy): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const cmd = parseTcpCopyCommand(req.method, new URL(req.url ?? '/', 'http://admin').searchParams);
    if (cmd.kind === 'error') {
      if (cmd.status === 405) res.setHeader('allow', 'GET, POST');
      return text(res, cmd.status, cmd.message);
    }
    json(res, 200, applyTcpCopyCommand(tc, cmd));
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

export function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
