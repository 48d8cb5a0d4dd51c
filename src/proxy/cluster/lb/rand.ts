/**
 * A fast non-cryptographic PRNG for load balancing (xorshift32, seeded from Math.random()).
 * Math.random() costs tens of ns on a busy host and P2C draws several numbers per pick; LB
 * choices only need cheap, well-spread numbers, never unpredictable ones.
 */
let state = ((Math.random() * 0xffffffff) >>> 0) || 0x9e3779b9;

/** Uniform unsigned 32-bit integer. */
export function randomU32(): number {
  let x = state;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  state = x;
  return x >>> 0;
}

/** Uniform integer in [0, n) for n ≤ 2^32. */
export function randomIndex(n: number): number {
  return Math.floor(randomU32() * (1 / 4294967296) * n);
}

