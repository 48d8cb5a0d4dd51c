/**
 * Feeds one accepted connection to the TCP copy when it is sampled: bytes from the client as
 * they arrive, bytes to the client as they are written (HTTP responses, TCP proxy, local replies
 * all go through `socket.write`/`end`). Sockets that are not sampled are left untouched, so the
 * copy costs one boolean check per connection when it is off.
 */
import type net from 'node:net';
import type { TcpCopy } from '../filters/tcp-copy/index.js';
import type { OriginalDestination } from './http/listener-runtime.js';

function asBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk as Buffer;
}

export function tapSocket(tc: TcpCopy, socket: net.Socket, dst: OriginalDestination | null): void {
  const tap = tc.attach({
    srcAddress: socket.remoteAddress ?? '',
    srcPort: socket.remotePort ?? 0,
    dstAddress: dst?.address ?? socket.localAddress ?? '',
    dstPort: dst?.port ?? socket.localPort ?? 0,
    family: socket.remoteFamily === 'IPv6' ? 6 : 4,
  });
  if (tap === null) return;
  socket.on('data', tap.onDownstreamData);
  const write = socket.write;
  const end = socket.end;
  socket.write = function (this: net.Socket, chunk: unknown, encoding?: unknown, cb?: unknown) {
    tap.onUpstreamData(asBuffer(chunk, encoding));
    return (write as (...a: unknown[]) => boolean).call(this, chunk, encoding, cb);
  } as typeof socket.write;
  socket.end = function (this: net.Socket, chunk?: unknown, encoding?: unknown, cb?: unknown) {
    if (chunk != null && typeof chunk !== 'function') tap.onUpstreamData(asBuffer(chunk, encoding));
    return (end as (...a: unknown[]) => net.Socket).call(this, chunk, encoding, cb);
  } as typeof socket.end;
  socket.once('close', tap.onClose);
}
