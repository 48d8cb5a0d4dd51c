// A lean unary gRPC client on node:http2 for the load generators: h2c sessions, requests given as
// already-encoded protobuf bytes, 5-byte gRPC message framing, grpc-status read from the trailers
// (or from a trailers-only response). No channel state machine, no interceptors, no (de)serialisers
// per call — the per-call CPU stays far below a sidecar's, so a bench measures the server, not the
// client (@grpc/grpc-js spends several times the sidecar's CPU per call on this box).
import http2 from 'node:http2';

/** One gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message) {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** An error a call rejects with: `code` is the grpc-status (or 'TRANSPORT'), `details` the grpc-message. */
export class GrpcCallError extends Error {
  constructor(code, details) {
    super(`gRPC status ${code}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/**
 * `sessions` h2c connections to `target` ("host:port"); `unary(path, frame, session?)` sends one
 * framed request (see grpcFrame) and resolves with the response message bytes (frame header removed).
 */
export async function connectH2Grpc(target, { sessions = 1, timeoutMs = 5000 } = {}) {
  const list = await Promise.all(
    Array.from(
      { length: Math.max(1, sessions) },
      () =>
        new Promise((resolve, reject) => {
          const s = http2.connect(`http://${target}`);
          const timer = setTimeout(() => (s.destroy(), reject(new Error(`h2c connect to ${target} timed out`))), timeoutMs);
          s.once('connect', () => (clearTimeout(timer), s.off('error', reject), s.on('error', () => {}), resolve(s)));
          s.once('error', (e) => (clearTimeout(timer), reject(e)));
        }),
    ),
  );
  const headersFor = new Map();
  const headers = (path) => {
    let h = headersFor.get(path);
    if (!h) headersFor.set(path, (h = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }));
    return h;
  };

  function unary(path, frame, session = 0) {
    return new Promise((resolve, reject) => {
      const req = list[session % list.length].request(headers(path), { endStream: false });
      let body = null;
      let chunks = null;
      let status = null;
      let details = '';
      const onMeta = (h) => {
        if (h['grpc-status'] != null) {
          status = Number(h['grpc-status']);
          details = h['grpc-message'] ?? '';
        }
      };
      req.on('response', onMeta); // a trailers-only response (an error) carries grpc-status here
      req.on('trailers', onMeta);
      req.on('data', (c) => (body == null ? (body = c) : (chunks ??= [body]).push(c)));
      req.on('error', () => {}); // reported through 'close' below
      req.on('close', () => {
        if (status == null) return reject(new GrpcCallError('TRANSPORT', `stream closed without grpc-status (rst ${req.rstCode})`));
        if (status !== 0) return reject(new GrpcCallError(status, decodeURIComponent(details)));
        const buf = chunks ? Buffer.concat(chunks) : body;
        if (!buf || buf.length < 5) return resolve(Buffer.alloc(0));
        if (buf[0] !== 0) return reject(new GrpcCallError('CLIENT', 'compressed response (not asked for)'));
        resolve(buf.subarray(5, 5 + buf.readUInt32BE(1)));
      });
      req.end(frame);
    });
  }

  return { unary, sessions: list.length, close: () => list.forEach((s) => s.close()) };
}

/** Length of the first length-delimited field `field` in a protobuf message (0 when absent). */
export function bytesFieldLength(msg, field) {
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = msg[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < msg.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 2) {
      const len = varint();
      if (tag >>> 3 === field) return len;
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return 0;
  }
  return 0;
}
