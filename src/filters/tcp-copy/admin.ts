/**
 * Admin endpoint `/tcpcopy`: GET prints the status JSON; POST switches copying at run time,
 * `POST /tcpcopy?enabled=true&rate=0.1` (either parameter may be left out; at least one is
 * needed). A bad or unknown parameter is a 400 naming it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TcpCopy } from './tcp-copy.js';

const PARAMS = new Set(['enabled', 'rate']);

export function tcpCopyAdminHandler(tc: TcpCopy): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, tc.status());
    if (req.method !== 'POST') {
      res.setHeader('allow', 'GET, POST');
      return text(res, 405, 'tcpcopy: use GET for the status or POST ?enabled=true|false&rate=0..1\n');
    }
    const q = url.searchParams;
    for (const k of q.keys()) if (!PARAMS.has(k)) return text(res, 400, `tcpcopy: unknown parameter "${k}" (expected enabled, rate)\n`);
    let enabled: boolean | undefined;
    const e = q.get('enabled');
    if (e !== null) {
      if (e === 'true' || e === '1') enabled = true;
      else if (e === 'false' || e === '0') enabled = false;
      else return text(res, 400, `tcpcopy: enabled: expected true or false, got ${JSON.stringify(e)}\n`);
    }
    let rate: number | undefined;
    const r = q.get('rate');
    if (r !== null) {
      rate = r.trim() === '' ? NaN : Number(r);
      if (!(Number.isFinite(rate) && rate >= 0 && rate <= 1)) return text(res, 400, `tcpcopy: rate: expected a probability from 0 to 1, got ${JSON.stringify(r)}\n`);
    }
    if (enabled === undefined && rate === undefined) return text(res, 400, 'tcpcopy: enabled: expected enabled=true|false and/or rate=0..1\n');
    tc.setEnabled(enabled ?? tc.status().enabled, rate);
    json(res, 200, tc.status());
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
