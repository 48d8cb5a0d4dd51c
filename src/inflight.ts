/**
 * Tables for what is in flight (deliveries, exchanges, streams) that do not make V8 promote
 * every request's objects.
 *
 * Why not a Map or a Set: when V8 rehashes a Map's or Set's table (it grows, shrinks or is full of
 * deleted entries — every few operations under add/delete churn), the old table keeps a pointer
 * to the new one (for iterators still walking it) and keeps the entries it held. Once one of those
 * obsolete tables is in old space, the scavenger takes it as a root: the next table survives, then
 * the one after it, and with them every object that was in flight when a table was replaced —
 * all promoted, until a mark-compact finds the chain dead. In the sidecar under pub/sub load
 * that promoted ~2 KB per message (the JetStream message, its headers, the app exchange):
 * scavenges of 4 ms instead of 1, a mark-compact every second, and a paced p99 of 15–30 ms
 * instead of 4–6 ms. A churned `new Set()` in a loop promotes ~100 % of its entries
 * (`node --trace-gc-nvp`); these tables promote none: an array's old backing store points
 * nowhere when it is replaced, and a slot, once cleared, holds nothing.
 */

/**
 * A set of items kept in array slots; `add` gives the item's slot, `remove(slot, item)` takes it
 * out (false when it is no longer there). Slots are reused; iteration order is slot order.
 */
export class SlotSet<T> {
  private readonly items: (T | undefined)[] = [];
  private readonly free: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): number {
    const slot = this.free.length > 0 ? this.free.pop()! : this.items.length;
    this.items[slot] = item;
    this.count++;
    return slot;
  }

  /** Removes `item` from `slot`; false when the slot holds something else (removed already, or cleared). */
  remove(slot: number, item: T): boolean {
    if (this.items[slot] !== item) return false;
    this.items[slot] = undefined;
    this.free.push(slot);
    this.count--;
    return true;
  }

  /** The items present now (a copy: callers may remove while walking it). */
  values(): T[] {
    const out: T[] = [];
    for (const x of this.items) if (x !== undefined) out.push(x);
    return out;
  }

  clear(): void {
    this.items.length = 0;
    this.free.length = 0;
    this.count = 0;
  }
}

/**
 * Items by a non-negative integer id (HTTP/2 stream ids), on a null-prototype object: V8 keeps
 * such keys in a number dictionary whose replaced tables point nowhere.
 */
export class IdTable<T> {
  private byId: Record<number, T> = Object.create(null) as Record<number, T>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    return this.byId[id];
  }

  has(id: number): boolean {
    return this.byId[id] !== undefined;
  }

  set(id: number, item: T): void {
    if (this.byId[id] === undefined) this.count++;
    this.byId[id] = item;
  }

  delete(id: number): boolean {
    if (this.byId[id] === undefined) return false;
    delete this.byId[id];
    this.count--;
    return true;
  }

  /** The items present now (a copy: callers may delete while walking it), in id order. */
  values(): T[] {
    return Object.values(this.byId);
  }

  clear(): void {
    this.byId = Object.create(null) as Record<number, T>;
    this.count = 0;
  }
}
