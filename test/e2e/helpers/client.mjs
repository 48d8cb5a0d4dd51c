/* global process, Buffer, setTimeout, clearTimeout */
/**
 * One-shot client run inside a network namespace (`ip netns exec NS node client.mjs '<json>'`);
 * prints one JSON result on stdout and exits 0 (failures are reported in the JSON, not thrown):
 *   {"kind":"http","url":"http://ip:port/path"}           Node http.get, no agent
 *   {"kind":"tcp","host":ip,"port":N,"size":N}            raw bytes (not HTTP) echoed back
 *   {"kind":"grpc","target":"ip:port","proto":"path","messages":N}
 *                                                          unary Echo then bidi Chat with N messages
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = cfg.timeoutMs ?? 8000;

function httpGet(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: TIMEOUT }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
  });
}

function tcpEcho(host, port, size) {
  // Starts with bytes no HTTP method, HTTP/2 preface or TLS record begins with.
  const payload = Buffer.concat([Buffer.from([0x00, 0xff, 0x00, 0x01]), randomBytes(size - 4)]);
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const got = [];
    let n = 0;
    let settled = false;
    const done = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      const all = Buffer.concat(got);
      s.destroy();
      resolve({
        why,
        sent: payload.length,
        received: all.length,
        equal: all.equals(payload),
        sha256Sent: createHash('sha256').update(payload).digest('hex'),
        sha256Received: createHash('sha256').update(all).digest('hex'),
      });
    };
    const t = setTimeout(() => done('timeout'), TIMEOUT);
    s.on('connect', () => s.write(payload));
    s.on('data', (d) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) {
        // All echoed: close our side and wait for the echo's close, so the proxy sees a full FIN exchange.
        s.end();
      }
    });
    s.on('close', () => done(n >= payload.length ? 'echoed' : 'closed early'));
    s.on('error', (e) => done(`error: ${e.message}`));
  });
}

async function grpcCalls(target, proto, messages) {
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const def = loader.loadSync(proto, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def).capa.e2e;
  const client = new pkg.Echo(target, grpc.credentials.createInsecure());
  const deadline = () => new Date(Date.now() + TIMEOUT);
  const unary = await new Promise((resolve) => {
    client.Echo({ text: 'hello', seq: 1 }, { deadline: deadline() }, (err, res) =>
      resolve(err ? { ok: false, code: err.code, details: err.details, message: err.message } : { ok: true, reply: res }),
    );
  });
  const bidi = await new Promise((resolve) => {
    const call = client.Chat({ deadline: deadline() });
    const replies = [];
    let status = null;
    let sent = 0;
    // Ping-pong: the next message goes only after the previous reply, so it is really interleaved.
    const next = () => {
      if (sent === messages) return call.end();
      sent++;
      call.write({ text: `m${sent}`, seq: sent });
    };
    call.on('data', (m) => {
      replies.push(m);
      next();
    });
    call.on('status', (s) => (status = { code: s.code, details: s.details }));
    call.on('error', (e) => resolve({ ok: false, code: e.code, details: e.details, message: e.message, replies }));
    call.on('end', () => setTimeout(() => resolve({ ok: true, replies, status }), 0));
    next();
  });
  client.close();
  return { unary, bidi };
}

let result;
try {
  if (cfg.kind === 'http') result = await httpGet(cfg.url);
  else if (cfg.kind === 'tcp') result = await tcpEcho(cfg.host, cfg.port, cfg.size);
  else if (cfg.kind === 'grpc') result = await grpcCalls(cfg.target, cfg.proto, cfg.messages);
  else result = { error: `unknown kind ${cfg.kind}` };
} catch (e) {
  result = { error: String((e && e.stack) || e) };
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
