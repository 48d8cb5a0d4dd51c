import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../../src/config/load.js';
import { compilePolicies, readPolicySources } from '../../../../src/config/policies.js';
import { builtinFilterRegistry } from '../../../../src/filters/index.js';
import { FLOW_CONTROL_FILTER_NAME } from '../../../../src/filters/flow-control/index.js';
import { ConfigError } from '../../../../src/errors.js';

const filters = builtinFilterRegistry();

const LISTENER = `
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routes:
      virtualHosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: / }, directResponse: { status: 200 } }] }]
`;

const doc = (name: string, rpu = 10) => `apiVersion: capa.io/v1
kind: FlowControlPolicy
metadata: { name: ${name} }
spec:
  match: { paths: [{ prefix: /api/ }], methods: [GET] }
  rateLimit: { requestsPerUnit: ${rpu}, unit: second }
`;

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'capa-policies-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  return dir;
}

function fromFiles(files: Record<string, string>, previous?: ReturnType<typeof compilePolicies>) {
  const dir = dirWith(files);
  const { sources } = readPolicySources([dir]);
  return { dir, fc: compilePolicies({ mainFile: 'main.yaml', inline: [], dirs: [dir], sources, previous }) };
}

describe('flow-control policy documents', () => {
  it('reads multi-document files in name order, documents in file order', () => {
    const { fc } = fromFiles({ 'b.yaml': doc('b1'), 'a.yaml': `${doc('a1')}---\n${doc('a2')}\n---\n`, 'notes.txt': 'x', '.hidden.yaml': doc('h') });
    expect(fc.policies.map((p) => p.name)).toEqual(['a1', 'a2', 'b1']);
    expect(fc.rejected).toEqual([]);
    expect(fc.policies[0]!.source).toMatch(/a\.yaml$/);
  });

  it('rejects an invalid document with file:line:col and field, and keeps the others', () => {
    const bad = `apiVersion: capa.io/v1
kind: FlowControlPolicy
metadata: { name: broken }
spec:
  match: { paths: [{ prefix: /x, exact: /y }] }
  rateLimit: { requestsPerUnit: -3, unit: fortnight }
`;
    const { dir, fc } = fromFiles({ 'p.yaml': `${doc('good')}---\n${bad}` });
    expect(fc.policies.map((p) => p.name)).toEqual(['good']);
    expect(fc.rejected).toHaveLength(1);
    const r = fc.rejected[0]!;
    expect(r.name).toBe('broken');
    expect(r.keptPrevious).toBe(false);
    const file = join(dir, 'p.yaml');
    expect(r.errors).toContain(`${file}:12:20: spec.match.paths[0]: give exactly one of prefix, exact or regex`);
    expect(r.errors.some((e) => e.startsWith(`${file}:13:33: spec.rateLimit.requestsPerUnit:`))).toBe(true);
    expect(r.errors.some((e) => e.startsWith(`${file}:13:43: spec.rateLimit.unit:`))).toBe(true);
  });

  it('names unknown keys, wrong kind, duplicate names and bad circuitBreaker fields', () => {
    const { fc } = fromFiles({
      'a.yaml': `${doc('dup')}---\n${doc('dup', 5)}---\napiVersion: capa.io/v1\nkind: Nope\nmetadata: { name: k }\nspec: { fault: { abort: { httpStatus: 503 } } }\n`,
      'b.yaml': `apiVersion: capa.io/v1\nkind: FlowControlPolicy\nmetadata: { name: cb }\nspec:\n  circuitBreaker: { errorThresholdPercentage: 500 }\n  extra: 1\n`,
    });
    expect(fc.policies.map((p) => p.name)).toEqual(['dup']);
    const errs = Object.fromEntries(fc.rejected.map((r) => [r.name, r.errors.join('\n')]));
    expect(errs.dup).toMatch(/a\.yaml:10:19: metadata\.name: policy 'dup' is already defined in/);
    expect(errs.k).toMatch(/a\.yaml:16:7: kind: expected kind FlowControlPolicy/);
    expect(errs.cb).toMatch(/b\.yaml:5:47: spec\.circuitBreaker\.errorThresholdPercentage: /);
    expect(errs.cb).toMatch(/b\.yaml:6:3: spec\.extra: unknown key 'extra'/);
  });

  it('keeps the previous version of a document that became invalid (marked stale)', () => {
    const first = fromFiles({ 'p.yaml': `${doc('a', 10)}---\n${doc('b', 20)}` });
    const dir = first.dir;
    writeFileSync(join(dir, 'p.yaml'), `${doc('a', 10).replace('requestsPerUnit: 10', 'requestsPerUnit: lots')}---\n${doc('b', 30)}`);
    const again = compilePolicies({ mainFile: 'main.yaml', inline: [], dirs: [dir], sources: readPolicySources([dir]).sources, previous: first.fc });
    expect(again.policies.map((p) => [p.name, p.stale, (p.spec as { rateLimit: { requestsPerUnit: number } }).rateLimit.requestsPerUnit])).toEqual([
      ['a', true, 10],
      ['b', false, 30],
    ]);
    expect(again.rejected).toMatchObject([{ name: 'a', keptPrevious: true }]);
    // a YAML syntax error (name unreadable) keeps every previous policy of that file
    writeFileSync(join(dir, 'p.yaml'), 'apiVersion: [\n');
    const broken = compilePolicies({ mainFile: 'main.yaml', inline: [], dirs: [dir], sources: readPolicySources([dir]).sources, previous: again });
    expect(broken.policies.map((p) => p.name)).toEqual(['a', 'b']);
    expect(broken.rejected[0]!.errors[0]).toMatch(/p\.yaml:\d+:\d+: /);
    // without a previous version the invalid document is simply not in force
    expect(fromFiles({ 'p.yaml': 'apiVersion: [\n' }).fc.policies).toEqual([]);
  });

  it('inline policies point into the main file; a bad one does not reject the main config', () => {
    const text = `${LISTENER}
flowControl:
  policies:
    - apiVersion: capa.io/v1
      kind: FlowControlPolicy
      metadata: { name: inline-ok }
      spec: { concurrency: { maxInFlight: 2 } }
    - apiVersion: capa.io/v1
      kind: FlowControlPolicy
      metadata: { name: inline-bad }
      spec: { concurrency: { maxInFlight: 0 } }
`;
    const { snapshot } = loadConfigText(text, 'main.yaml', { filters, env: {} });
    expect(snapshot.flowControl.policies.map((p) => [p.name, p.source])).toEqual([['inline-ok', 'main.yaml#flowControl.policies[0]']]);
    expect(snapshot.flowControl.rejected[0]!.errors).toEqual([
      expect.stringMatching(/^main\.yaml:18:43: flowControl\.policies\[1\]\.spec\.concurrency\.maxInFlight: /),
    ]);
  });

  it('puts the flow_control filter first in every HTTP chain only when a policy is in force', () => {
    const none = loadConfigText(LISTENER, 'main.yaml', { filters, env: {} }).snapshot;
    expect(none.listeners[0]!.httpFilters.map((f) => f.name)).not.toContain(FLOW_CONTROL_FILTER_NAME);
    const dir = dirWith({ 'p.yaml': doc('p') });
    const withDir = loadConfigText(`${LISTENER}\nflowControl: { policyDirs: [${dir}] }\n`, 'main.yaml', { filters, env: {} }).snapshot;
    expect(withDir.listeners[0]!.httpFilters[0]!.name).toBe(FLOW_CONTROL_FILTER_NAME);
    expect(withDir.flowControl.policyDirs).toEqual([dir]);
    const cli = loadConfigText(LISTENER, 'main.yaml', { filters, env: {}, policyDirs: [dir] }).snapshot;
    expect(cli.flowControl.policies.map((p) => p.name)).toEqual(['p']);
  });

  it('rejects listing the flow_control filter by hand', () => {
    const text = LISTENER.replace('    routes:', `    httpFilters: [{ name: ${FLOW_CONTROL_FILTER_NAME}, config: { policies: [] } }, { name: envoy.filters.http.router }]\n    routes:`);
    expect(() => loadConfigText(text, 'main.yaml', { filters, env: {} })).toThrow(ConfigError);
  });

  it('reports an unreadable policy directory as rejected, not fatal', () => {
    const { snapshot } = loadConfigText(LISTENER, 'main.yaml', { filters, env: {}, policyDirs: ['/nonexistent/capa-policies'] });
    expect(snapshot.flowControl.rejected[0]!.errors[0]).toMatch(/cannot read policy directory/);
  });
});
