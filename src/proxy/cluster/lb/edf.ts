/**
 * Earliest-deadline-first scheduler (Envoy's EdfScheduler), used for weighted round robin.
 *
 * Entry i has deadline d_i and step 1/w_i; next() returns the entry with the smallest deadline
 * (ties by when it was last scheduled) and advances its deadline by its step. Over any window
 * each entry is returned in proportion to its weight, interleaved smoothly, in O(log n) with
 * no allocation: the heap and the per-entry state are typed arrays sized at reset().
 */
export class EdfScheduler {
  private heap = new Int32Array(0);
  private deadline = new Float64Array(0);
  private step = new Float64Array(0);
  private order = new Float64Array(0);
  private size = 0;
  private seq = 0;

  /** Start over with these weights (all > 0). Entries are numbered as in `weights`. */
  reset(weights: ArrayLike<number>): void {
    const n = weights.length;
    if (this.heap.length < n) {
      this.heap = new Int32Array(n);
      this.deadline = new Float64Array(n);
      this.step = new Float64Array(n);
      this.order = new Float64Array(n);
    }
    this.size = n;
    this.seq = 0;
    for (let i = 0; i < n; i++) {
      const s = 1 / weights[i]!;
      this.step[i] = s;
      this.deadline[i] = s;
      this.order[i] = this.seq++;
      this.heap[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** The next entry; advances its deadline. The scheduler must be non-empty. */
  next(): number {
    const top = this.heap[0]!;
    this.deadline[top] = this.deadline[top]! + this.step[top]!;
    this.order[top] = this.seq++;
    this.siftDown(0);
    return top;
  }

  private less(a: number, b: number): boolean {
    const da = this.deadline[a]!;
    const db = this.deadline[b]!;
    return da < db || (da === db && this.order[a]! < this.order[b]!);
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.size;
    const item = heap[i]!;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      if (!this.less(heap[c]!, item)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = item;
  }
}
