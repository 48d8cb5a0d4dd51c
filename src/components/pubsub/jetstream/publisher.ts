/**
 * JetStream publishes without nats.js's per-request machinery. `js.publish` makes a request
 * object, two Error objects (with stack captures) and a timer per call; here one subscription on
 * a wildcard inbox takes every PubAck, a map finds the waiting publish by the reply subject's
 * last token, and one sweep timer fails those past their
 * deadline. A publish resolves only on a PubAck naming a stream and a sequence — the server
 * stored it; a JetStream error reply, "no responders" (no stream takes the subject), a timeout or
 * the connection closing rejects it.
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from 'nats';
import type { WriteBatch } from './writes.js';

interface Pending {
  readonly resolve: (ack: PubAck) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
}

export interface PubAck {
  readonly stream: string;
  readonly seq: number;
  readonly duplicate: boolean;
}

export class JetStreamPublisher {
  private readonly pending = new Map<string, Pending>();
  private readonly prefix: string;
  private readonly sub: Subscription;
  private next = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly writes: WriteBatch,
    private readonly timeoutMs: number,
    inbox: string,
  ) {
    this.prefix = `${inbox}.`;
    this.sub = nc.subscribe(`${inbox}.*`, { callback: (err, msg) => (err ? this.failAll(err) : this.onReply(msg)) });
    // Unref'd: it never keeps the process up; a publish fails between timeoutMs and timeoutMs + one period.
    this.sweeper = setInterval(this.sweep, Math.max(10, Math.min(250, timeoutMs / 5))).unref();
    void nc.closed().then((e) => this.close(e ?? new Error('the NATS connection closed')));
  }

  publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<PubAck> {
    const id = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      this.writes.add(() => {
        if (!this.pending.has(id)) return; // already failed (closed)
        try {
          this.nc.publish(subject, data, { headers, reply: this.prefix + id });
        } catch (e) {
          this.settle(id)?.reject(e as Error);
        }
      });
    });
  }

  /** Rejects every waiting publish (the connection is closing or closed); idempotent. */
  close(why: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.failAll(why);
    try {
      this.sub.unsubscribe();
    } catch {
      // the connection is already gone, and the subscription with it
    }
  }

  private onReply(msg: Msg): void {
    const p = this.settle(msg.subject.slice(this.prefix.length));
    if (!p) return; // timed out already
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new Error('no responders: no JetStream stream takes this subject'));
      return;
    }
    let ack: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString('utf8')) as typeof ack;
    } catch {
      p.reject(new Error('JetStream answered the publish with something that is not a PubAck'));
      return;
    }
    if (ack.error) p.reject(new Error(`${ack.error.description ?? 'JetStream error'} (code ${ack.error.code}, err_code ${ack.error.err_code})`));
    else if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number') p.reject(new Error('JetStream answered the publish without a stream and sequence'));
    else p.resolve({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true });
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    return p;
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    // Map order is insertion order and every publish has the same timeout: stop at the first live one.
    for (const [id, p] of this.pending) {
      if (p.deadline > now) break;
      this.settle(id);
      p.reject(new Error(`no PubAck within ${this.timeoutMs} ms`));
    }
  };

  private failAll(e: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(e);
  }
}
