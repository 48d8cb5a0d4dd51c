/**
 * JetStream publishes without nats.js's per-request machinery. `js.publish` makes a request
 * object, two Error objects (with stack captures) and a timer per call; here one subscription on
 * a wildcard inbox takes every PubAck, the reply subject's last token (a sequence number) finds
 * the waiting publish, and one sweep timer fails those past their deadline. Waiting publishes are
 * a queue in sequence order, not a Map: a Map under add/delete churn made V8 promote every
 * publish's objects (src/inflight.ts). A publish resolves only on a PubAck naming a stream and a
 * sequence — the server stored it; a JetStream error reply, "no responders" (no stream takes the
 * subject), a timeout or the connection closing rejects it.
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
  /** Waiting publishes: `queue[i]` is sequence number `base + i`; settled ones are cleared to undefined. */
  private queue: (Pending | undefined)[] = [];
  private base = 0;
  /** Index of the first entry that may still wait. */
  private head = 0;
  private readonly prefix: string;
  private readonly sub: Subscription;
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
    const seq = this.base + this.queue.length;
    return new Promise<PubAck>((resolve, reject) => {
      const p: Pending = { resolve, reject, deadline: Date.now() + this.timeoutMs };
      this.queue.push(p);
      this.writes.add(() => {
        if (this.at(seq) !== p) return; // already failed (closed)
        try {
          this.nc.publish(subject, data, { headers, reply: this.prefix + seq.toString(36) });
        } catch (e) {
          this.settle(seq)?.reject(e as Error);
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
    const p = this.settle(Number.parseInt(msg.subject.slice(this.prefix.length), 36));
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

  private at(seq: number): Pending | undefined {
    const i = seq - this.base;
    return i >= this.head && i < this.queue.length ? this.queue[i] : undefined;
  }

  /** Takes the publish `seq` out of the queue (undefined: settled already, or not a sequence of ours). */
  private settle(seq: number): Pending | undefined {
    const p = this.at(seq);
    if (!p) return undefined;
    this.queue[seq - this.base] = undefined;
    this.trim();
    return p;
  }

  /** Moves `head` past settled entries; drops them from the array once they are most of it. */
  private trim(): void {
    const q = this.queue;
    while (this.head < q.length && q[this.head] === undefined) this.head++;
    if (this.head === q.length) {
      this.base += q.length;
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= q.length) {
      this.base += this.head;
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    // Sequence order is publish order and every publish has the same timeout: stop at the first live one.
    while (this.head < this.queue.length) {
      const p = this.queue[this.head];
      if (p !== undefined && p.deadline > now) break;
      this.queue[this.head] = undefined;
      this.trim();
      p?.reject(new Error(`no PubAck within ${this.timeoutMs} ms`));
    }
  };

  private failAll(e: Error): void {
    const all = this.queue.slice(this.head).filter((p): p is Pending => p !== undefined);
    this.base += this.queue.length;
    this.queue = [];
    this.head = 0;
    for (const p of all) p.reject(e);
  }
}
