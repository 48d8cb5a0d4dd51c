/**
 * `pubsub.jetstream` metadata, named as Dapr's JetStream component names it (natsURL, name,
 * token, streamName, durableName, ackWait, maxDeliver, deliverPolicy, memoryStorage, replicas,
 * concurrency) plus what creating the stream needs (subjectPrefix, maxAge) and the delay of a
 * RETRY (redeliveryDelay).
 */
import { z } from 'zod';
import { bool, int, text } from '../../../config/schema-common.js';
import { duration } from '../common.js';

/** JetStream stream and consumer names: no whitespace, '.', '*', '>', path separators. */
const NAME = /^[^\s.*>/\\]+$/;
/** Subject tokens without wildcards, joined by dots. */
const SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

const count = int(1, 10_000, 'a count');
const concurrency = z.unknown().transform((v, ctx): number => {
  if (v === 'single') return 1;
  if (v === 'parallel') return 64;
  const r = count.safeParse(v);
  if (r.success) return r.data;
  ctx.addIssue({ code: 'custom', message: `expected "single", "parallel" or a count 1-10000, got ${JSON.stringify(v)}` });
  return z.NEVER;
});

export const jetstreamPubSubMetadata = z
  .strictObject({
    /** One URL or a comma-separated list. */
    natsURL: text.default('nats://127.0.0.1:4222'),
    /** The connection name the server shows. */
    name: text.default('capa-runtime pubsub.jetstream'),
    token: text.optional(),
    /** The stream that holds every topic of this component; created (or extended) on init. Default `capa-<component name>`. */
    streamName: text.optional(),
    /** A topic is published on subject `<subjectPrefix>.<topic>`; the stream takes `<subjectPrefix>.>`. Default: the stream name. */
    subjectPrefix: text.optional(),
    /** When set, used instead of each subscription's consumer group (all subscriptions share one durable per topic). */
    durableName: text.optional(),
    /** How long a delivered message may go unanswered before JetStream delivers it again. */
    ackWait: duration.default(30_000),
    /** Deliveries per message before JetStream stops (-1: no limit; the runtime applies maxDeliveries itself). */
    maxDeliver: int(-1, 1_000_000, 'a count (-1 = no limit)').default(-1),
    /** Where a new consumer group starts: every stored message, only new ones, or the last one. */
    deliverPolicy: z.enum(['all', 'new', 'last']).default('all'),
    /** How long a message the handler answered RETRY (or rejected) waits before it is delivered again. */
    redeliveryDelay: duration.default(1000),
    /** Messages one subscription has in its handler at once: "single" (1, keeps the order), "parallel" (64), or a count. */
    concurrency: concurrency.default(1),
    /** Stream storage (only used when the stream is created). */
    memoryStorage: bool.default(false),
    replicas: int(1, 5, 'a replica count').default(1),
    /** How long the stream keeps a message (0: until deleted by other limits; only used when the stream is created). */
    maxAge: duration.default(0),
    /** How long init waits for the first connection, and publish for the server's ack. */
    connectTimeout: duration.default(2000),
    publishTimeout: duration.default(5000),
  })
  .superRefine((m, ctx) => {
    if (m.streamName !== undefined && !NAME.test(m.streamName)) {
      ctx.addIssue({ code: 'custom', message: 'a stream name without whitespace, ".", "*", ">", "/" or "\\"', path: ['streamName'] });
    }
    if (m.subjectPrefix !== undefined && !SUBJECT.test(m.subjectPrefix)) {
      ctx.addIssue({ code: 'custom', message: 'subject tokens separated by "." without whitespace or wildcards', path: ['subjectPrefix'] });
    }
    if (!/^(nats|tls):\/\/[^\s,]+(,\s*(nats|tls):\/\/[^\s,]+)*$/.test(m.natsURL)) {
      ctx.addIssue({ code: 'custom', message: `expected nats://host:port (comma-separated for several), got ${JSON.stringify(m.natsURL)}`, path: ['natsURL'] });
    }
  })
  .prefault({});

export type JetStreamPubSubMetadata = z.output<typeof jetstreamPubSubMetadata>;

export { NAME as JETSTREAM_NAME, SUBJECT as JETSTREAM_SUBJECT };
