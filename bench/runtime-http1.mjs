// The lean HTTP/1.1 ends of the runtime suite's pub/sub load (bench/runtime.mjs): the publisher's
// client and the subscribing app's server, both written on node:net. They share the suite's two
// cores with the sidecar and nats-server, and node:http's ClientRequest / IncomingMessage /
// ServerResponse cost them ~100 µs of CPU per message each — CPU the sidecar then did not get.
// These do what the exchange needs and no more, but they are real HTTP/1.1 peers: one request
// at a time per keep-alive connection (no pipelining), Content-Length framing, the status and
// every message checked. Anything they do not handle (a chunked body, a malformed head) fails
// the message or closes the connection, so it shows up as an error, never as a success.

import net from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 16 * 1024;

/** Content-Length in a lower-cased head (-1 when absent); throws on Transfer-Encoding (not handled here). */
function framing(headLower) {
  if (headLower.includes('\r\ntransfer-encoding:')) throw new Error('Transfer-Encoding is not handled by this bench peer');
  const i = headLower.indexOf('\r\ncontent-length:');
  if (i === -1) return -1;
  const n = Number.parseInt(headLower.slice(i + 17, headLower.indexOf('\r\n', i + 17)).trim(), 10);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('bad Content-Length');
  return n;
}

/**
 * `publish(body)` → POST `path` with `body` (an ASCII string) over up to `maxConns` keep-alive
 * connections; resolves when the answer is `okStatus`, rejects otherwise. Calls beyond the
 * connections wait in FIFO order.
 */
export function leanHttpPoster(target, path, contentType, maxConns, okStatus = 204) {
  const [host, port] = target.split(':');
  const prefix = `POST ${path} HTTP/1.1\r\nHost: ${target}\r\nContent-Type: ${contentType}\r\nContent-Length: `;
  const idle = [];
  const queue = [];
  let qHead = 0;
  let open = 0;
  const all = new Set();

  function connect(first) {
    open++;
    const c = { socket: net.connect({ host, port: Number(port), noDelay: true }), job: null, buf: null };
    all.add(c);
    c.socket.on('data', (d) => onData(c, d));
    c.socket.on('error', () => {});
    c.socket.on('close', () => {
      open--;
      all.delete(c);
      const i = idle.indexOf(c);
      if (i >= 0) idle.splice(i, 1);
      c.job?.reject(new Error('the connection closed before the answer'));
      c.job = null;
      if (qHead < queue.length) connect(queue[qHead++]);
    });
    start(c, first);
  }

  function start(c, job) {
    c.job = job;
    c.socket.write(`${prefix}${job.body.length}\r\n\r\n${job.body}`, 'latin1');
  }

  function onData(c, d) {
    const job = c.job;
    if (!job) return c.socket.destroy(); // bytes with nothing asked: never reuse
    const buf = c.buf ? Buffer.concat([c.buf, d]) : d;
    c.buf = null;
    const e = buf.indexOf(CRLFCRLF);
    if (e === -1) {
      if (buf.length > MAX_HEAD) return fail(c, new Error('answer head too large'));
      c.buf = buf;
      return;
    }
    const head = buf.latin1Slice(0, e + 2);
    let len;
    try {
      if (!head.startsWith('HTTP/1.1 ')) throw new Error(`not an HTTP/1.1 answer: ${JSON.stringify(head.slice(0, 20))}`);
      len = framing(head.toLowerCase());
    } catch (err) {
      return fail(c, err);
    }
    const status = Number(head.slice(9, 12));
    const bodyLen = status === 204 || status === 304 ? 0 : Math.max(0, len);
    if (len === -1 && status !== 204 && status !== 304) return fail(c, new Error(`answer ${status} without Content-Length`));
    const total = e + 4 + bodyLen;
    if (buf.length < total) {
      c.buf = buf;
      return;
    }
    if (buf.length > total) return fail(c, new Error('bytes after the answer'));
    c.job = null;
    if (status === okStatus) job.resolve();
    else job.reject(new Error(`answered ${status}: ${buf.toString('utf8', e + 4, total).slice(0, 200)}`));
    if (/\r\nconnection:\s*close/i.test(head)) return c.socket.destroy();
    if (qHead < queue.length) {
      start(c, queue[qHead++]);
      if (qHead === queue.length) queue.length = qHead = 0;
    } else idle.push(c);
  }

  function fail(c, err) {
    const job = c.job;
    c.job = null;
    c.socket.destroy();
    job?.reject(err);
  }

  return {
    publish(body) {
      return new Promise((resolve, reject) => {
        const job = { body, resolve, reject };
        const c = idle.pop();
        if (c) start(c, job);
        else if (open < maxConns) connect(job);
        else queue.push(job);
      });
    },
    close() {
      for (const c of all) c.socket.destroy();
    },
  };
}

/**
 * An HTTP/1.1 server on node:net: `handle(method, target, body: Buffer) → { status, type?, body? }`
 * answers each request (Content-Length framing; `Connection: close` honoured; pipelined requests
 * answered in order). A request it can not read gets a 400 and the connection is closed.
 */
export function leanHttpServer(handle) {
  return net.createServer({ noDelay: true }, (socket) => {
    let buf = null;
    socket.on('error', () => {});
    socket.on('data', (d) => {
      buf = buf ? Buffer.concat([buf, d]) : d;
      let off = 0;
      let out = '';
      let close = false;
      while (!close) {
        const e = buf.indexOf(CRLFCRLF, off);
        if (e === -1) {
          if (buf.length - off > MAX_HEAD) [out, close] = [out + BAD_REQUEST, true];
          break;
        }
        const head = buf.latin1Slice(off, e + 2);
        const sp1 = head.indexOf(' ');
        const sp2 = head.indexOf(' ', sp1 + 1);
        const lower = head.toLowerCase();
        let len;
        try {
          if (sp1 <= 0 || sp2 <= sp1 || !head.startsWith('HTTP/1.', sp2 + 1)) throw new Error('bad request line');
          len = Math.max(0, framing(lower));
        } catch {
          [out, close] = [out + BAD_REQUEST, true];
          break;
        }
        if (buf.length < e + 4 + len) break;
        const body = buf.subarray(e + 4, e + 4 + len);
        off = e + 4 + len;
        const r = handle(head.slice(0, sp1), head.slice(sp1 + 1, sp2), body);
        const payload = r.body ?? '';
        close = /\r\nconnection:\s*close/.test(lower) || head.startsWith('HTTP/1.0', sp2 + 1);
        out += `HTTP/1.1 ${r.status} ${r.status === 200 ? 'OK' : 'X'}\r\n${r.type ? `Content-Type: ${r.type}\r\n` : ''}Content-Length: ${Buffer.byteLength(payload)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${payload}`;
      }
      buf = off === buf.length ? null : buf.subarray(off);
      if (out) socket.write(out);
      if (close) socket.end();
    });
  });
}

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
