/**
 * Every configuration store. A new backend is one folder under src/components/configuration and
 * one entry here. The file store gets a per-run temp directory; Redis a per-run key prefix,
 * removed afterwards. Two stores built from the same `yaml` share the data (two sidecars).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_HOST, deleteRedisPrefix } from '../state/matrix.js';

export interface ConfigurationMatrixEntry {
  readonly type: string;
  setup(): { yaml: string; cleanup(): Promise<void> };
}

export const CONFIGURATION_MATRIX: readonly ConfigurationMatrixEntry[] = [
  {
    type: 'configuration.file',
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'capa-config-'));
      return {
        yaml: `name: configstore\ntype: configuration.file\nmetadata:\n  - name: path\n    value: ${JSON.stringify(join(dir, 'config.yaml'))}\n`,
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    type: 'configuration.redis',
    setup() {
      const prefix = `capa-test-config-${randomUUID().slice(0, 8)}:`;
      return {
        yaml: `name: configstore\ntype: configuration.redis\nmetadata:\n  - name: redisHost\n    value: "${REDIS_HOST}"\n  - name: keyPrefix\n    value: "${prefix}"\n`,
        cleanup: () => deleteRedisPrefix(prefix),
      };
    },
  },
];
