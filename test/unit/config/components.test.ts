/** `components:` in the config: shapes, registry checks, and the shipped examples. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtinFilterRegistry } from '../../../src/filters/index.js';
import { loadConfigText } from '../../../src/config/load.js';
import { errorsOf, load, yaml } from './helpers.js';

describe('components config', () => {
  it('defaults to none; version defaults to v1; metadata as a mapping or Dapr list', () => {
    expect(load('{}').snapshot.components).toEqual([]);
    const snap = load(yaml`
      components:
        - name: statestore
          type: state.memory
        - name: cache
          type: state.redis
          metadata:
            - name: redisHost
              value: 10.0.0.1:6380
            - name: keyPrefix
              value: "app||"
    `).snapshot;
    expect(snap.components).toEqual([
      { name: 'statestore', type: 'state.memory', version: 'v1', metadata: {}, secretRefs: {} },
      { name: 'cache', type: 'state.redis', version: 'v1', metadata: { redisHost: '10.0.0.1:6380', keyPrefix: 'app||' }, secretRefs: {} },
    ]);
  });

  it('rejects unknown types (listing the known), unknown versions, duplicates and bad metadata', () => {
    const errors = errorsOf(yaml`
      components:
        - name: a
          type: pubsub.kafka
        - name: a
          type: state.memory
          version: v9
        - name: b
          type: state.redis
          metadata: { redisDB: 99 }
    `);
    expect(errors).toEqual([
      expect.stringMatching(/components\[0\]\.type: unknown component type 'pubsub\.kafka' \(known: configuration\.file, .*state\.memory, state\.postgresql, state\.redis\)/),
      expect.stringMatching(/components\[1\]\.name: duplicate component name 'a'/),
      expect.stringMatching(/components\[1\]\.version: component type state\.memory has no version v9/),
      expect.stringMatching(/components\[2\]\.metadata\.redisDB: expected a Redis database number 0-15/),
    ]);
  });

  it('secretKeyRef metadata: resolved from the named (or the only) secret store, checked against the rest of the schema', () => {
    const snap = load(yaml`
      components:
        - name: secrets
          type: secretstores.local.env
        - name: cache
          type: state.redis
          auth: { secretStore: secrets }
          metadata:
            - name: redisHost
              value: 10.0.0.1:6380
            - name: redisPassword
              secretKeyRef: { name: REDIS_PASSWORD }
        - name: cache2
          type: state.redis
          metadata:
            redisPassword: { secretKeyRef: { name: redis, key: password } }
    `).snapshot;
    expect(snap.components[1]).toEqual({
      name: 'cache',
      type: 'state.redis',
      version: 'v1',
      metadata: { redisHost: '10.0.0.1:6380' },
      secretRefs: { redisPassword: { store: 'secrets', name: 'REDIS_PASSWORD', key: 'REDIS_PASSWORD' } },
    });
    expect(snap.components[2]!.secretRefs).toEqual({ redisPassword: { store: 'secrets', name: 'redis', key: 'password' } });
  });

  it('rejects a secretKeyRef without a secret store, with an unknown one, and an entry with both value and secretKeyRef', () => {
    expect(
      errorsOf(yaml`
      components:
        - name: cache
          type: state.redis
          metadata:
            - name: redisPassword
              secretKeyRef: { name: pw }
    `),
    ).toEqual([expect.stringMatching(/components\[0\]\.auth\.secretStore: metadata 'redisPassword' reads a secret: name the secret store in auth\.secretStore \(declared secret stores: none\)/)]);
    expect(
      errorsOf(yaml`
      components:
        - name: cache
          type: state.redis
          auth: { secretStore: vault }
          metadata: { redisPassword: { secretKeyRef: { name: pw } } }
    `),
    ).toEqual([expect.stringMatching(/components\[0\]\.auth\.secretStore: 'vault' is not a secret store declared in components/)]);
    expect(
      errorsOf(yaml`
      components:
        - name: cache
          type: state.redis
          metadata:
            - name: redisPassword
              value: x
              secretKeyRef: { name: pw }
    `).join('\n'),
    ).toMatch(/components\[0\]\.metadata/);
  });

  it('the shipped examples declare every building block under the names Dapr and Layotto users expect', () => {
    const names = ['statestore', 'pubsub', 'configstore', 'lockstore', 'sequencer', 'secretstore'];
    for (const [file, types] of [
      ['sidecar.yaml', ['state.memory', 'pubsub.memory', 'configuration.file', 'lock.memory', 'sequencer.memory', 'secretstores.local.file']],
      ['redis.yaml', ['state.redis', 'pubsub.jetstream', 'configuration.redis', 'lock.redis', 'sequencer.postgresql', 'secretstores.local.file']],
    ] as const) {
      const text = readFileSync(new URL(`../../../examples/${file}`, import.meta.url), 'utf8');
      const { snapshot } = loadConfigText(text, file, { filters: builtinFilterRegistry(), env: {} });
      expect(snapshot.components.map((c) => [c.name, c.type])).toEqual(names.map((n, i) => [n, types[i]]));
    }
  });
});
