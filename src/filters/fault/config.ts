/**
 * envoy.extensions.filters.http.fault.v3.HTTPFault, YAML-friendly: percentages as a number
 * (`percent: 10`) or Envoy's FractionalPercent (`percentage: {numerator, denominator}`), delays
 * as durations. The same schema parses the listener config and per-route overrides (a per-route
 * config replaces the listener's, as in Envoy).
 */
import { z } from 'zod';
import { durationMs } from '../../config/units.js';

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

const fractional = z
  .strictObject({
    numerator: z.number().int().min(0),
    denominator: z.enum(['HUNDRED', 'TEN_THOUSAND', 'MILLION']).default('HUNDRED'),
  })
  .transform((f) => Math.min(100, (f.numerator / DENOMINATORS[f.denominator]) * 100));

/** Percent of requests, 0..100. */
const percent = z.number().min(0).max(100);

const delaySchema = z
  .strictObject({
    fixedDelay: durationMs.optional(),
    fixed: durationMs.optional(),
    percent: percent.optional(),
    percentage: fractional.optional(),
    /** Envoy header_delay: the delay comes from the x-capa-fault-delay-request header. */
    headerDelay: z.strictObject({}).optional(),
  })
  .refine((d) => d.fixedDelay !== undefined || d.fixed !== undefined || d.headerDelay !== undefined, {
    message: 'a delay needs fixedDelay (e.g. "100ms") or headerDelay: {}',
  })
  .transform((d) => ({
    fixedMs: d.fixedDelay ?? d.fixed ?? 0,
    percent: d.percent ?? d.percentage ?? 100,
    fromHeader: d.headerDelay !== undefined,
  }));

const abortSchema = z
  .strictObject({
    httpStatus: z.number().int().min(200).max(599).optional(),
    grpcStatus: z.number().int().min(1).max(16).optional(),
    percent: percent.optional(),
    percentage: fractional.optional(),
    /** Envoy header_abort: the status comes from x-capa-fault-abort-request (or -grpc-request). */
    headerAbort: z.strictObject({}).optional(),
  })
  .refine((a) => a.httpStatus !== undefined || a.grpcStatus !== undefined || a.headerAbort !== undefined, {
    message: 'an abort needs httpStatus, grpcStatus or headerAbort: {}',
  })
  .transform((a) => ({
    httpStatus: a.httpStatus ?? 0,
    grpcStatus: a.grpcStatus ?? 0,
    percent: a.percent ?? a.percentage ?? 100,
    fromHeader: a.headerAbort !== undefined,
  }));

export const faultConfigSchema = z
  .strictObject({
    '@type': z.string().optional(),
    delay: delaySchema.optional(),
    abort: abortSchema.optional(),
    /** Envoy max_active_faults: faults in progress at once; above it requests pass untouched. */
    maxActiveFaults: z.number().int().min(0).optional(),
    /** Only requests carrying all of these headers (exact values) are faulted. */
    headers: z.array(z.strictObject({ name: z.string().min(1), exact: z.string().optional() })).default([]),
  })
  .transform((c) => ({
    delay: c.delay ?? null,
    abort: c.abort ?? null,
    maxActiveFaults: c.maxActiveFaults ?? Infinity,
    headers: c.headers.map((h) => ({ name: h.name.toLowerCase(), exact: h.exact })),
  }));

export type FaultConfig = Readonly<z.output<typeof faultConfigSchema>>;

/** Header names the filter reads when headerDelay / headerAbort are configured. */
export const FAULT_HEADERS = {
  delay: 'x-capa-fault-delay-request',
  delayPercent: 'x-capa-fault-delay-request-percentage',
  abort: 'x-capa-fault-abort-request',
  abortGrpc: 'x-capa-fault-abort-grpc-request',
  abortPercent: 'x-capa-fault-abort-request-percentage',
} as const;
