/** `pubsub.memory` metadata (Dapr's in-memory pub/sub has none; these tune redelivery). */
import { z } from 'zod';
import { int } from '../../../config/schema-common.js';
import { duration } from '../common.js';

export const memoryPubSubMetadata = z
  .strictObject({
    /** How long a message the handler answered RETRY (or rejected) waits before it is delivered again. */
    redeliveryDelay: duration.default(1000),
    /** Messages one subscription has in its handler at once (1 keeps the publish order). */
    concurrency: int(1, 10_000, 'a count').default(1),
  })
  .prefault({});

export type MemoryPubSubMetadata = z.output<typeof memoryPubSubMetadata>;
