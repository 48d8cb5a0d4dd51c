/**
 * Outbound NATS writes grouped per event-loop turn. nats.js flushes what was queued on the
 * connection in one microtask, so writes made in one synchronous run go out as one socket write;
 * but in the sidecar every publish (an HTTP request) and every ack (an app's HTTP answer) arrives
 * in its own event-loop turn and would cost a write — and a read on nats-server — of its own.
 * `WriteBatch.add` queues the write and runs every queued one together in a `setImmediate`, after
 * all I/O callbacks of the turn, so they leave in one write. The delay is at most one turn.
 */
export class WriteBatch {
  private queue: (() => void)[] = [];
  private scheduled = false;

  /** `write` runs at the end of this turn; it must handle its own errors (a throw is swallowed). */
  add(write: () => void): void {
    this.queue.push(write);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Runs what is queued now (before closing the connection). */
  readonly flush = (): void => {
    this.scheduled = false;
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
