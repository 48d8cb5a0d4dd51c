/**
 * Load a CommonJS dependency on first use instead of at start-up. The heavy optional backends
 * (ioredis, rate-limiter-flexible, the OpenTelemetry SDK) cost 20+ MB of RSS and ~150 ms of start
 * time when imported eagerly, and most sidecars never use them.
 */
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

export function lazy<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= requireFromHere(id) as T);
}
