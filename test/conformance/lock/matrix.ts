/**
 * Every lock backend. A new backend is one folder under src/components/lock and one entry here.
 * Redis runs against the machine's real server under a key prefix unique to the run, removed
 * afterwards; `shared` marks backends where two stores (two sidecars) share the locks.
 */
import { randomUUID } from 'node:crypto';
import { REDIS_HOST, deleteRedisPrefix } from '../state/matrix.js';

export interface LockMatrixEntry {
  readonly type: string;
  /** The `components:` entry as a user writes it. */
  readonly yaml: string;
  /** Two stores built from `yaml` exclude each other (a backend shared by sidecars). */
  readonly shared: boolean;
  readonly cleanup?: () => Promise<void>;
}

const redisPrefix = `capa-test-lock-${randomUUID().slice(0, 8)}:`;

export const LOCK_MATRIX: readonly LockMatrixEntry[] = [
  { type: 'lock.memory', yaml: 'name: lockstore\ntype: lock.memory\n', shared: false },
  {
    type: 'lock.redis',
    yaml: `name: lockstore\ntype: lock.redis\nmetadata:\n  - name: redisHost\n    value: "${REDIS_HOST}"\n  - name: keyPrefix\n    value: "${redisPrefix}"\n`,
    shared: true,
    cleanup: () => deleteRedisPrefix(redisPrefix),
  },
];
