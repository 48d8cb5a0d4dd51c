import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { accessLogFactory, flushAccessLogs, JSON_ACCESS_LOG_FIELDS } from '../../../../src/filters/access-log/index.js';
import { FilterRegistry } from '../../../../src/filters/registry.js';
import type { FilterContext, HttpStream } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { newStreamInfo, type StreamInfo } from '../../../../src/proxy/stream-info.js';

const dir = mkdtempSync(join(tmpdir(), 'capa-access-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ctx(accessLog: FilterContext['accessLog']): FilterContext {
  return {
    registry: new Registry(),
    logger: pino({ level: 'silent' }),
    listenerName: 'l',
    direction: 'INBOUND',
    node: { id: 'n', cluster: 'c', workloadName: 'w', namespace: 'ns', canonicalService: 's', canonicalRevision: 'r', meshId: 'm' },
    accessLog,
  };
}

function stream(over: Partial<StreamInfo>): HttpStream {
  const info = Object.assign(newStreamInfo(), { startTime: Date.now(), method: 'GET', path: '/a', responseCode: 200 }, over);
  return {
    info,
    requestHeaders: HeaderMap.from({ authorization: 'Bearer top-secret' }),
    method: info.method,
    path: info.path,
    authority: info.authority,
    isGrpc: false,
    routeName: '',
    clusterName: '',
    sendLocalReply: () => undefined,
    continueRequest: () => undefined,
  };
}

describe('access log filter', () => {
  it('is registered by name, alias and type URL', () => {
    const r = new FilterRegistry().registerAll([accessLogFactory]);
    expect(r.get('capa.filters.http.access_log')).toBe(accessLogFactory);
    expect(r.get('envoy.access_loggers.file')).toBe(accessLogFactory);
    expect(r.getByType('type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog')).toBe(accessLogFactory);
  });

  it('parses config strictly', () => {
    expect(accessLogFactory.parseConfig(undefined)).toEqual({});
    expect(accessLogFactory.parseConfig({ path: '/tmp/x', format: 'text' })).toEqual({ path: '/tmp/x', format: 'text' });
    expect(() => accessLogFactory.parseConfig({ format: 'yaml' })).toThrow(/format/);
    expect(() => accessLogFactory.parseConfig({ pth: '/x' })).toThrow(/pth/);
  });

  it('is off when the path is empty: forRoute returns null', () => {
    expect(accessLogFactory.build({}, ctx({ path: '', format: 'json' })).forRoute(undefined)).toBeNull();
    expect(accessLogFactory.build({ path: '' }, ctx({ path: '/dev/stdout', format: 'json' })).forRoute(undefined)).toBeNull();
  });

  it('writes JSON lines to the file from the listener defaults, without the authorization header', async () => {
    const file = join(dir, 'sub', 'access.json.log');
    const built = accessLogFactory.build(accessLogFactory.parseConfig({}), ctx({ path: file, format: 'json' }));
    const create = built.forRoute(undefined)!;
    const f = create();
    expect(create()).toBe(f);
    expect(Object.getOwnPropertyNames(Object.getPrototypeOf(f)).filter((k) => k.startsWith('on'))).toEqual(['onComplete']);
    f.onComplete!(stream({ requestId: 'one' }));
    f.onComplete!(stream({ requestId: 'two', responseFlags: 'NR', responseCode: 404 }));
    await flushAccessLogs();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(Object.keys(lines[0]!)).toEqual([...JSON_ACCESS_LOG_FIELDS]);
    expect(lines.map((l) => [l.request_id, l.response_flags, l.response_code])).toEqual([
      ['one', '-', 200],
      ['two', 'NR', 404],
    ]);
    expect(readFileSync(file, 'utf8')).not.toContain('top-secret');
    built.close!();
  });

  it('shares one writer per path across builds and honours format: text', async () => {
    const file = join(dir, 'access.txt.log');
    const a = accessLogFactory.build({ path: file, format: 'text' }, ctx({ path: '', format: 'json' }));
    const b = accessLogFactory.build({ path: file, format: 'text' }, ctx({ path: '', format: 'json' }));
    a.forRoute(undefined)!().onComplete!(stream({ requestId: 'a' }));
    a.close!(); // b still holds the writer
    b.forRoute(undefined)!().onComplete!(stream({ requestId: 'b', method: 'POST' }));
    await flushAccessLogs();
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(2);
    expect(text).toMatch(/^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "GET \/a HTTP\/1\.1" 200 - 0 0 0 - "-" "-" "a" "-" "-"\n/);
    expect(text).toContain('"POST /a HTTP/1.1" 200 -');
    b.close!();
  });
});
