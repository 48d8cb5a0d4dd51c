/**
 * tcp-copy settings (after Layotto's TCP copy): which connections are sampled and how much of
 * them may reach the disk. Sizes are YAML sizes ("1MiB" or a byte count).
 *
 * ```yaml
 * tcpCopy: { enabled: true, sampleRate: 0.01, maxPerSecond: 10, maxBytesPerConnection: 1MiB,
 *            diskBudget: 100MiB, maxFileSize: 10MiB, directory: /tmp/capa-tcpcopy, ports: [8080] }
 * ```
 */
import { z } from 'zod';
import { sizeBytes } from '../../config/units.js';

/** A pcap file must hold its header and the frames of one queue entry (64 KiB of payload). */
export const MIN_FILE_SIZE = 128 * 1024;

export const tcpCopyConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Probability that a connection is copied, 0..1. */
    sampleRate: z.number().min(0, 'expected a probability from 0 to 1').max(1, 'expected a probability from 0 to 1').default(0.01),
    /** Sampled connections started per second, at most (later ones in the same second are skipped). */
    maxPerSecond: z.number().int('expected a whole number').min(1, 'expected at least 1').default(10),
    /** Payload bytes (both directions together) copied per connection; the rest is not copied. */
    maxBytesPerConnection: sizeBytes.default(1024 * 1024),
    /** Bytes of pcap files this process may write in total; then copying stops. */
    diskBudget: sizeBytes.default(100 * 1024 * 1024),
    /** A file is closed and the next one started before it would grow past this. */
    maxFileSize: sizeBytes.default(10 * 1024 * 1024),
    directory: z.string().min(1, 'expected a directory path').default('/tmp/capa-tcpcopy'),
    /** Only connections to these destination ports; [] = every port. */
    ports: z.array(z.number().int().min(1).max(65535, 'expected a port from 1 to 65535')).default([]),
  })
  .superRefine((c, ctx) => {
    if (c.maxFileSize < MIN_FILE_SIZE) {
      ctx.addIssue({ code: 'custom', path: ['maxFileSize'], message: `expected at least ${MIN_FILE_SIZE} bytes (the frames of 64 KiB of payload), got ${c.maxFileSize}` });
    }
    if (c.maxBytesPerConnection < 1) {
      ctx.addIssue({ code: 'custom', path: ['maxBytesPerConnection'], message: 'expected at least 1 byte' });
    }
  });

export type TcpCopyConfig = Readonly<z.output<typeof tcpCopyConfigSchema>>;

/** Parse YAML/JSON input; throws an Error whose message names every bad field (`tcpCopy.sampleRate: ...`). */
export function parseTcpCopyConfig(raw: unknown, at = 'tcpCopy'): TcpCopyConfig {
  const r = tcpCopyConfigSchema.safeParse(raw ?? {});
  if (r.success) return Object.freeze({ ...r.data, ports: Object.freeze([...r.data.ports]) as number[] });
  const lines = r.error.issues.flatMap((i) => {
    const path = [at, ...i.path.map(String)].join('.');
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${path}.${k}: unknown key`);
    return [`${path}: ${i.message}`];
  });
  throw new Error(lines.join('\n'));
}
