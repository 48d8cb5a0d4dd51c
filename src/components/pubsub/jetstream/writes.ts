/**
 * Outbound NATS writes grouped. nats.js flushes what was queued on the connection in one
 * microtask, so writes made in one synchronous run go out as one socket write; but in the
 * sidecar every publish (an HTTP request) and every ack (an app's HTTP answer) arrives in its own
 * event-loop turn and would cost a write — and a read and a wake-up on nats-server — of its own.
 * On this path those writes and wake-ups are a large part of both processes' CPU per message.
 *
 * `WriteBatch.add` queues the write; the queue runs as a whole:
 * - in a `setImmediate` (after every I/O callback of the turn) when the last flush was at least
 *   `windowMs` ago — a lone publish or ack is not delayed;
 * - otherwise when the window since the last flush ends — under load, at most one write per
 *   window, however many publishes and acks came in. The delay is at most `windowMs`.
 */
export class WriteBatch {
  private queue: (() => void)[] = [];
  private scheduled = false;
  private lastFlush = 0;

  /** `windowMs` 0: every turn's writes go out at the end of that turn. */
  constructor(private readonly windowMs = 1) {}

  /** `write` runs at the end of this turn or window; it must handle its own errors (a throw is swallowed). */
  add(write: () => void): void {
    this.queue.push(write);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastFlush + this.windowMs - performance.now();
    if (wait > 0) setTimeout(this.flush, wait);
    else setImmediate(this.flush);
  }

  /** Runs what is queued now (before closing the connection). */
  readonly flush = (): void => {
    this.scheduled = false;
    this.lastFlush = performance.now();
    const writes = this.queue;
    this.queue = [];
    for (const write of writes) {
      try {
        write();
      } catch {
        // each write reports its own failure; one must not stop the others
      }
    }
  };
}
