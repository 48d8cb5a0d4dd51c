/** `state.memory` metadata: none yet (an unknown key is an error). */
import { z } from 'zod';

export const memoryStateMetadata = z.strictObject({}).prefault({});
export type MemoryStateMetadata = z.output<typeof memoryStateMetadata>;
