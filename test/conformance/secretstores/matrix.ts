/**
 * Every secret store, each with the secrets it is set up to hold. A new backend is one folder
 * under src/components/secretstores and one entry here. Files live in a per-run temp directory;
 * environment variables carry a per-run prefix and are removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SecretsMatrixEntry {
  readonly type: string;
  /** Creates the secrets; returns the `components:` entry and exactly what bulkGet must return. */
  setup(): { yaml: string; expected: Record<string, Record<string, string>>; cleanup(): void };
}

export const SECRETS_MATRIX: readonly SecretsMatrixEntry[] = [
  {
    type: 'secretstores.local.file',
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'capa-secrets-'));
      const file = join(dir, 'secrets.json');
      writeFileSync(file, JSON.stringify({ dbPassword: 'p@ss', db: { user: 'admin', port: 5432 }, list: ['x', 'y'] }));
      return {
        yaml: `name: secretstore\ntype: secretstores.local.file\nmetadata:\n  - name: secretsFile\n    value: ${JSON.stringify(file)}\n`,
        expected: {
          dbPassword: { dbPassword: 'p@ss' },
          'db:user': { 'db:user': 'admin' },
          'db:port': { 'db:port': '5432' },
          'list:0': { 'list:0': 'x' },
          'list:1': { 'list:1': 'y' },
        },
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    type: 'secretstores.local.env',
    setup() {
      const prefix = `CAPA_TEST_${randomUUID().slice(0, 8).toUpperCase()}_`;
      process.env[`${prefix}dbPassword`] = 'p@ss';
      process.env[`${prefix}API_KEY`] = 'k=1;2';
      return {
        yaml: `name: secretstore\ntype: secretstores.local.env\nmetadata:\n  - name: prefix\n    value: ${prefix}\n`,
        expected: { dbPassword: { dbPassword: 'p@ss' }, API_KEY: { API_KEY: 'k=1;2' } },
        cleanup: () => {
          delete process.env[`${prefix}dbPassword`];
          delete process.env[`${prefix}API_KEY`];
        },
      };
    },
  },
];
