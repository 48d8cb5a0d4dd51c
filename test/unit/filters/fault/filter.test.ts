import { describe, expect, it } from 'vitest';
import { FaultFilter, faultConfigSchema } from '../../../../src/filters/fault/index.js';
import type { HttpStream, LocalReplyOptions } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { newStreamInfo } from '../../../../src/proxy/stream-info.js';

interface Reply {
  status: number;
  body: string;
  opts?: LocalReplyOptions;
}

function stream(headers: Record<string, string> = {}): HttpStream & { replies: Reply[] } {
  const replies: Reply[] = [];
  return {
    replies,
    info: newStreamInfo(),
    requestHeaders: HeaderMap.from(headers),
    method: 'GET',
    path: '/',
    authority: 'a',
    isGrpc: false,
    routeName: 'r',
    clusterName: 'c',
    sendLocalReply: (status, body, opts) => replies.push({ status, body, opts }),
    continueRequest: () => {},
  };
}

function filter(raw: unknown, random = () => 0.5) {
  const counts = { delays: 0, aborts: 0 };
  const f = new FaultFilter({
    cfg: faultConfigSchema.parse(raw),
    delays: { inc: () => counts.delays++ },
    aborts: { inc: () => counts.aborts++ },
    active: { n: 0 },
    random,
  });
  return { f, counts };
}

describe('fault filter', () => {
  it('aborts with the configured status and flag FI when the roll is under the percentage', () => {
    const { f, counts } = filter({ abort: { httpStatus: 503, percent: 60 } }, () => 0.5);
    const s = stream();
    expect(f.onRequestHeaders(s)).toBe('stop');
    expect(s.replies[0]).toMatchObject({ status: 503, opts: { flag: 'FI' } });
    expect(counts.aborts).toBe(1);
  });

  it('lets the request pass when the roll is over the percentage', () => {
    const { f } = filter({ abort: { httpStatus: 503, percent: 40 } }, () => 0.5);
    const s = stream();
    expect(f.onRequestHeaders(s)).toBe('continue');
    expect(s.replies).toHaveLength(0);
  });

  it('delays, flags DI, then continues', async () => {
    const { f, counts } = filter({ delay: { fixed: '60ms' } });
    const s = stream();
    const t0 = Date.now();
    const r = f.onRequestHeaders(s);
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toBe('continue');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(s.info.responseFlags).toBe('DI');
    expect(counts.delays).toBe(1);
  });

  it('header control: faults only requests that ask, with the asked status and delay', async () => {
    const { f } = filter({ delay: { headerDelay: {} }, abort: { headerAbort: {} } });
    const plain = stream();
    expect(f.onRequestHeaders(plain)).toBe('continue');
    const asked = stream({ 'x-capa-fault-abort-request': '418' });
    expect(f.onRequestHeaders(asked)).toBe('stop');
    expect(asked.replies[0]?.status).toBe(418);
    const grpc = stream({ 'x-capa-fault-abort-grpc-request': '8' });
    f.onRequestHeaders(grpc);
    expect(grpc.replies[0]?.opts?.grpcStatus).toBe(8);
    const slow = stream({ 'x-capa-fault-delay-request': '30' });
    expect(await f.onRequestHeaders(slow)).toBe('continue');
    expect(slow.info.responseFlags).toBe('DI');
  });

  it('faults only requests with the configured headers', () => {
    const { f } = filter({ abort: { httpStatus: 500 }, headers: [{ name: 'x-chaos', exact: 'on' }] });
    expect(f.onRequestHeaders(stream())).toBe('continue');
    expect(f.onRequestHeaders(stream({ 'x-chaos': 'off' }))).toBe('continue');
    expect(f.onRequestHeaders(stream({ 'x-chaos': 'on' }))).toBe('stop');
  });

  it('maxActiveFaults bounds concurrent delays', async () => {
    const { f } = filter({ delay: { fixed: '50ms' }, maxActiveFaults: 1 });
    const first = f.onRequestHeaders(stream());
    expect(first).toBeInstanceOf(Promise);
    expect(f.onRequestHeaders(stream())).toBe('continue');
    await first;
    expect(f.onRequestHeaders(stream())).toBeInstanceOf(Promise);
  });
});
