import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { CapaError, ConfigError, ERROR_CATALOG, localReplyFor } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('error catalog', () => {
  it('documents every code in the README table with its status and flag', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOG)) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      expect(row, `${code} missing from README`).toBeDefined();
      if (spec.flag) expect(row).toContain(`| ${spec.flag} |`);
    }
  });

  it('maps a CapaError to its status, flag and a body that says why', () => {
    const r = localReplyFor(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', 'upstream connect error: ECONNREFUSED connecting to 127.0.0.1:1'));
    expect(r).toMatchObject({ status: 503, flag: 'UF', grpcStatus: 14 });
    expect(r.body).toContain('ECONNREFUSED');
  });

  it('turns an unknown error into a 500 without leaking its message', () => {
    const r = localReplyFor(new Error('secret internals'));
    expect(r.status).toBe(500);
    expect(r.body).not.toContain('secret');
  });

  it('ConfigError carries its detail lines in the message', () => {
    const e = new ConfigError('invalid config', ['a.yaml:1:2: x: bad']);
    expect(e.code).toBe('CAPA_ERR_CONFIG');
    expect(e.message).toContain('a.yaml:1:2: x: bad');
  });
});
