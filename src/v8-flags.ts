/**
 * V8 settings for the data path, applied before anything else is evaluated (main.ts imports this
 * first). Allocation-site pretenuring: under keep-alive load V8 judged the per-request objects of
 * the HTTP streams long-lived and allocated them straight into old space, where they piled up as
 * garbage until the next mark-compact — peak RSS 102 → 148 MB at the same throughput, measured with
 * `node bench/run.mjs` and confirmed by running with and without this flag. Per-request objects
 * die young; the scavenger is the right place for them.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--no-allocation-site-pretenuring');
