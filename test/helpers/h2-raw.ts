/**
 * HTTP/2 at the frame level, for tests where the exact frames matter (END_STREAM on which frame,
 * a trailers HEADERS frame, RST_STREAM codes) or where a peer must break the protocol on
 * purpose: a frame encoder and reader, a raw server (an h2c upstream that sends whatever the
 * test writes) and a raw client. HEADERS blocks are decoded with our HpackDecoder and encoded
 * with encodeHeaders (no dynamic table), so no CONTINUATION or padding handling is needed.
 */
import net from 'node:net';
import { HpackDecoder, encodeHeaders } from '../../src/h2/hpack.js';
import { PREFACE } from '../../src/h2/connection.js';

export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  /** Decoded header list of a HEADERS frame (flat [name, value, …]). */
  headers?: string[];
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

export function headersFrame(stream: number, fields: [string, string][], endStream: boolean): Buffer {
  return frame(T.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), stream, encodeHeaders(fields));
}

export function settingsFrame(pairs: [number, number][] = []): Buffer {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(T.SETTINGS, 0, 0, p);
}

export function rstCode(f: Frame): number {
  return f.payload.readUInt32BE(0);
}

/** Splits a byte stream into frames; HEADERS blocks are decoded in order with one HPACK decoder. */
export class FrameReader {
  private buf = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();

  push(chunk: Buffer): Frame[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: Frame = { type: this.buf[3]!, flags: this.buf[4]!, stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) };
      if (f.type === T.HEADERS) f.headers = this.decoder.decode(f.payload);
      out.push(f);
      this.buf = this.buf.subarray(9 + len);
    }
    return out;
  }
}

export interface RawConn {
  readonly socket: net.Socket;
  /** Every frame received, in order. */
  readonly frames: Frame[];
  send(...bufs: Buffer[]): void;
  /** The frames received on one stream. */
  on(stream: number): Frame[];
}

function rawConn(socket: net.Socket, skipPreface: boolean, onFrame: (f: Frame, c: RawConn) => void): RawConn {
  const reader = new FrameReader();
  const frames: Frame[] = [];
  let preface = skipPreface ? PREFACE.length : 0;
  const c: RawConn = {
    socket,
    frames,
    send: (...bufs) => {
      if (!socket.destroyed) socket.write(Buffer.concat(bufs));
    },
    on: (stream) => frames.filter((f) => f.stream === stream),
  };
  socket.on('data', (d: Buffer) => {
    if (preface > 0) {
      const n = Math.min(preface, d.length);
      preface -= n;
      d = d.subarray(n);
    }
    for (const f of reader.push(d)) {
      frames.push(f);
      // SETTINGS are acknowledged, as a real peer would.
      if (f.type === T.SETTINGS && (f.flags & ACK) === 0) c.send(frame(T.SETTINGS, ACK, 0));
      onFrame(f, c);
    }
  });
  socket.on('error', () => undefined);
  return c;
}

export interface RawServer {
  port: number;
  conns: RawConn[];
  close(): Promise<void>;
}

/**
 * An h2c server that answers nothing by itself: it sends its SETTINGS (`settings`), acknowledges
 * the client's, and hands every frame to `onFrame`, which writes what the test wants.
 */
export async function rawH2Server(onFrame: (f: Frame, c: RawConn) => void, settings: [number, number][] = []): Promise<RawServer> {
  const conns: RawConn[] = [];
  const server = net.createServer((socket) => {
    const c = rawConn(socket, true, onFrame);
    conns.push(c);
    c.send(settingsFrame(settings));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => r());
      }),
  };
}

/** A client connection that sends the preface, empty SETTINGS and `first` in one write. */
export async function rawH2Client(port: number, first: Buffer[], onFrame: (f: Frame, c: RawConn) => void = () => undefined): Promise<RawConn> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const c = rawConn(socket, false, onFrame);
  c.send(PREFACE, settingsFrame(), ...first);
  return c;
}

/** The value of `name` in a decoded header list. */
export function field(h: readonly string[] | undefined, name: string): string | undefined {
  if (h === undefined) return undefined;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}
