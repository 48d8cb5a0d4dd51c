/**
 * gRPC-over-HTTP/2 wire details shared by the proxy (route deadlines) and the runtime's gRPC
 * server (call deadlines).
 */

/** `grpc-timeout` value: 1-8 digits and a unit (gRPC over HTTP/2, "Requests"). */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A `grpc-timeout` header in milliseconds (may be fractional), or undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = GRPC_TIMEOUT.exec(value);
  return m === null ? undefined : Number(m[1]) * GRPC_UNIT_MS[m[2]!]!;
}
