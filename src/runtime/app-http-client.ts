/**
 * A lean keep-alive HTTP/1.1 client for calling the app (pub/sub deliveries, callbacks). Under
 * pub/sub load node:http's ClientRequest / Agent / IncomingMessage machinery cost the sidecar
 * more CPU per delivery than everything else the delivery does; this client does only what one
 * request needs:
 * - the request head and a body of up to MAX_INLINE_BODY bytes leave in one socket write;
 * - responses are read by the proxy's own HTTP/1 upstream connection (src/proxy/upstream/
 *   connection.ts: strict status line and header parsing, Content-Length, chunked, close-delimited
 *   bodies, 1xx skipped, keep-alive rules) — used as it is;
 * - connections are kept alive and reused last-idle-first, at most `maxSockets` at once; calls
 *   beyond that wait in FIFO order for a free connection;
 * - every call has a deadline, checked by one sweep timer rather than a timer per call;
 * - calls in flight are kept in a SlotSet, not a Map (src/inflight.ts: a churned Map made V8
 *   promote every delivery's objects).
 * Failures reject with a CapaError: CAPA_ERR_UPSTREAM_CONNECT (connect failed, e.g. ECONNREFUSED),
 * _RESET (the app closed the connection before a complete answer), _PROTOCOL (malformed answer),
 * _TIMEOUT (no complete answer before the deadline; the connection is closed, never reused).
 */
import net from 'node:net';
import { CapaError } from '../errors.js';
import { SlotSet } from '../inflight.js';
import type { ResponseHead } from '../proxy/http1/index.js';
import { UpstreamConnection, type ConnectionOwner, type ResponseHandler } from '../proxy/upstream/connection.js';

export interface AppHttpClientOptions {
  readonly host: string;
  readonly port: number;
  /** Connections open at once (default 128). */
  readonly maxSockets?: number;
  /** A response body larger than this fails the call (default 16 MiB). */
  readonly maxBodyBytes?: number;
}

export interface AppHttpReply {
  readonly status: number;
  readonly body: string;
}

/** Bodies up to this size are sent in the same write as the head (as latin1: the bytes unchanged). */
const MAX_INLINE_BODY = 64 * 1024;
const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/** How often deadlines are checked: a call fails between its timeout and timeout + this. */
const SWEEP_MS = 20;

// === impl Exchange ===

/** One request/response: the connection's response handler and the caller's promise. */
class Exchange implements ResponseHandler {
  status = 0;
  /** Its place in the client's in-flight set. */
  slot = -1;
  resolve: (r: AppHttpReply) => void = noop;
  reject: (e: CapaError) => void = noop;
  conn: UpstreamConnection | null = null;
  /** The socket while connecting (so a deadline can abort the connect). */
  connecting: net.Socket | null = null;
  settled = false;
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(
    readonly method: string,
    readonly head: string,
    readonly body: Buffer | undefined,
    readonly deadline: number,
    readonly timeoutMs: number,
    private readonly maxBody: number,
    private readonly done: (x: Exchange, err: CapaError | null, reply: AppHttpReply | null) => void,
  ) {}

  onResponseHead(head: ResponseHead): void {
    this.status = head.status;
  }

  onResponseData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBody) {
      this.conn?.abort();
      this.finish(new CapaError('CAPA_ERR_UPSTREAM_PROTOCOL', `the app's response body exceeds ${this.maxBody} bytes`));
      return;
    }
    // The connection hands out slices of what it read; keep them until the end (no copy needed:
    // a socket read buffer is not reused).
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const c = this.chunks;
    const body = c.length === 0 ? '' : c.length === 1 ? c[0]!.toString('utf8') : Buffer.concat(c).toString('utf8');
    this.chunks = [];
    this.finishOk({ status: this.status, body });
  }

  onUpgrade(socket: net.Socket): void {
    socket.destroy();
    this.finish(new CapaError('CAPA_ERR_UPSTREAM_PROTOCOL', 'the app answered 101 Switching Protocols'));
  }

  onError(err: CapaError): void {
    this.finish(err);
  }

  finish(err: CapaError): void {
    if (this.settled) return;
    this.settled = true;
    this.done(this, err, null);
  }

  private finishOk(reply: AppHttpReply): void {
    if (this.settled) return;
    this.settled = true;
    this.done(this, null, reply);
  }
}

function noop(): void {}

// === impl AppHttpClient ===

export class AppHttpClient implements ConnectionOwner {
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiting: Exchange[] = [];
  private waitHead = 0;
  /** Connections open or being opened. */
  private open = 0;
  private readonly all = new Set<UpstreamConnection>();
  private readonly inflight = new SlotSet<Exchange>();
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly hostHeader: string;
  private readonly maxSockets: number;
  private readonly maxBody: number;

  constructor(private readonly opts: AppHttpClientOptions) {
    this.hostHeader = `Host: ${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}\r\n`;
    this.maxSockets = Math.max(1, opts.maxSockets ?? 128);
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  }

  /**
   * One request. `path` must be an origin-form target (visible ASCII); `headerLines` are
   * complete field lines, each ending in CRLF, already checked by the caller; Host and
   * Content-Length are added here.
   */
  request(method: string, path: string, headerLines: string, body: Buffer | undefined, timeoutMs: number): Promise<AppHttpReply> {
    if (this.closed) return Promise.reject(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', 'the app client is closed'));
    if (!isRequestTarget(path)) return Promise.reject(new CapaError('CAPA_ERR_BAD_REQUEST', `request path ${JSON.stringify(path)} is not a valid origin-form target`));
    let head = `${method} ${path} HTTP/1.1\r\n${this.hostHeader}${headerLines}`;
    head += body === undefined ? '\r\n' : `Content-Length: ${body.length}\r\n\r\n`;
    return new Promise<AppHttpReply>((resolve, reject) => {
      const x = new Exchange(method, head, body, Date.now() + timeoutMs, timeoutMs, this.maxBody, this.settle);
      x.resolve = resolve;
      x.reject = reject;
      x.slot = this.inflight.add(x);
      this.sweeper ??= setInterval(this.sweep, SWEEP_MS).unref();
      this.dispatch(x);
    });
  }

  /** Closes every connection; calls in flight reject. */
  close(): void {
    this.closed = true;
    for (const c of [...this.all]) c.destroy();
    this.idle.length = 0;
    for (const x of this.inflight.values()) {
      x.connecting?.destroy();
      x.finish(new CapaError('CAPA_ERR_UPSTREAM_RESET', 'the app client was closed'));
    }
  }

  /** Connections open now (idle or busy); for tests and metrics. */
  get connections(): number {
    return this.open;
  }

  // --- ConnectionOwner: the proxy's connection reports here

  onIdle(conn: UpstreamConnection): void {
    const next = this.nextWaiting();
    if (next) this.send(next, conn);
    else this.idle.push(conn);
  }

  onClosed(conn: UpstreamConnection): void {
    if (!this.all.delete(conn)) return;
    this.open--;
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A slot is free: a waiting call gets a new connection.
    const next = this.closed ? undefined : this.nextWaiting();
    if (next) this.connect(next);
  }

  // --- internals

  private dispatch(x: Exchange): void {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.reusable) {
        this.send(x, c);
        return;
      }
    }
    if (this.open < this.maxSockets) this.connect(x);
    else this.waiting.push(x);
  }

  private nextWaiting(): Exchange | undefined {
    while (this.waitHead < this.waiting.length) {
      const x = this.waiting[this.waitHead]!;
      this.waiting[this.waitHead++] = undefined as unknown as Exchange;
      if (this.waitHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitHead = 0;
      }
      if (!x.settled) return x;
    }
    return undefined;
  }

  private connect(x: Exchange): void {
    this.open++;
    const socket = net.connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
    x.connecting = socket;
    let over = false;
    const onFail = (e?: Error): void => {
      if (over) return;
      over = true;
      this.open--;
      x.connecting = null;
      x.finish(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', e?.message ?? 'the connection closed while connecting', { cause: e }));
      const next = this.closed ? undefined : this.nextWaiting();
      if (next) this.connect(next);
    };
    socket.once('error', onFail);
    socket.once('close', () => onFail());
    socket.once('connect', () => {
      over = true;
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      x.connecting = null;
      const conn = new UpstreamConnection(socket, this);
      this.all.add(conn);
      if (this.closed) conn.destroy();
      else if (x.settled) this.onIdle(conn); // timed out while connecting: the connection is still good
      else this.send(x, conn);
    });
  }

  private send(x: Exchange, conn: UpstreamConnection): void {
    x.conn = conn;
    const body = x.body;
    if (body === undefined || body.length === 0) {
      conn.start(x.method, x.head, x, false);
    } else if (body.length <= MAX_INLINE_BODY) {
      // latin1 maps each byte to one char and back: the body's bytes go out unchanged, in the head's write.
      conn.start(x.method, x.head + body.toString('latin1'), x, false);
    } else {
      conn.socket.cork();
      conn.start(x.method, x.head, x, false);
      conn.write(body);
      conn.socket.uncork();
    }
  }

  private readonly settle = (x: Exchange, err: CapaError | null, reply: AppHttpReply | null): void => {
    if (!this.inflight.remove(x.slot, x)) return;
    const { resolve, reject } = x;
    // The connection may keep its last exchange until it is reused: let go of the caller's promise.
    x.resolve = x.reject = noop;
    if (err) reject(err);
    else resolve(reply!);
  };

  private readonly sweep = (): void => {
    if (this.inflight.size === 0) {
      clearInterval(this.sweeper!);
      this.sweeper = null;
      return;
    }
    const now = Date.now();
    for (const x of this.inflight.values()) {
      if (x.deadline > now) continue;
      x.finish(new CapaError('CAPA_ERR_UPSTREAM_TIMEOUT', `the app did not answer within ${x.timeoutMs} ms`));
      // Mid-exchange the connection can not be reused (abort closes it); a connect still under way is given up.
      x.conn?.abort();
      x.connecting?.destroy();
    }
  };
}

/** origin-form: "/" then characters \x21-\xff, what node:http accepts (no space or control character to break the request line). */
function isRequestTarget(path: string): boolean {
  if (path.charCodeAt(0) !== 47) return false;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c > 0xff) return false;
  }
  return true;
}
