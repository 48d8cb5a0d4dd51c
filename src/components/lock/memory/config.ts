/** `lock.memory` metadata: none (an unknown key is an error). */
import { z } from 'zod';

export const memoryLockMetadata = z.strictObject({}).prefault({});
export type MemoryLockMetadata = z.output<typeof memoryLockMetadata>;
