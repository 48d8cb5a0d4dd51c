import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../../../src/config/snapshot.js';
import { istioStatsFactory } from '../../../../src/filters/istio-stats/index.js';
import { FilterRegistry } from '../../../../src/filters/registry.js';
import type { FilterContext, HttpStream } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { newStreamInfo, type StreamInfo } from '../../../../src/proxy/stream-info.js';

const NODE: NodeInfo = { id: 'n', cluster: 'Kubernetes', workloadName: 'productpage-v1', namespace: 'bookinfo', canonicalService: 'productpage', canonicalRevision: 'v1', meshId: 'cluster.local' };

function ctx(registry: Registry): FilterContext {
  return { registry, logger: pino({ level: 'silent' }), listenerName: 'virtualOutbound', direction: 'OUTBOUND', node: NODE, accessLog: { path: '', format: 'json' } };
}

function stream(over: Partial<StreamInfo>, isGrpc = false): HttpStream {
  const info = Object.assign(newStreamInfo(), over);
  return {
    info,
    requestHeaders: new HeaderMap(),
    method: info.method,
    path: info.path,
    authority: info.authority,
    isGrpc,
    routeName: info.routeName,
    clusterName: info.upstreamCluster,
    sendLocalReply: () => undefined,
    continueRequest: () => undefined,
  };
}

async function count(reg: Registry, match: string): Promise<number> {
  const lines = (await reg.metrics()).split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes(match));
  return lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('istio.stats filter', () => {
  it('is registered by name, alias and type URL', () => {
    const r = new FilterRegistry().registerAll([istioStatsFactory]);
    expect(r.get('istio.stats')).toBe(istioStatsFactory);
    expect(r.get('envoy.filters.http.istio_stats')).toBe(istioStatsFactory);
    expect(r.getByType('type.googleapis.com/stats.PluginConfig')).toBe(istioStatsFactory);
  });

  it('increments istio_requests_total on completion through one shared filter', async () => {
    const reg = new Registry();
    const built = istioStatsFactory.build(istioStatsFactory.parseConfig({}), ctx(reg));
    const create = built.forRoute(undefined)!;
    expect(create).toBeTypeOf('function');
    const f = create();
    expect(create()).toBe(f);
    expect(Object.keys(Object.getPrototypeOf(f)).concat(Object.getOwnPropertyNames(Object.getPrototypeOf(f))).filter((k) => k.startsWith('on'))).toEqual(['onComplete']);
    const s = stream({ direction: 'OUTBOUND', upstreamCluster: 'outbound|9080||reviews.bookinfo.svc.cluster.local', responseCode: 200 });
    f.onComplete!(s);
    f.onComplete!(s);
    f.onComplete!(stream({ direction: 'OUTBOUND', upstreamCluster: 'outbound|9080||reviews.bookinfo.svc.cluster.local', grpcStatus: 5, responseCode: 200 }, true));
    expect(await count(reg, 'destination_service="reviews.bookinfo.svc.cluster.local"')).toBe(3);
    expect(await count(reg, 'request_protocol="grpc",response_code="200",grpc_response_status="5"')).toBe(1);
    expect(await count(reg, 'source_workload="productpage-v1"')).toBe(3);
  });

  it('a second build on the same registry shares the metrics', async () => {
    const reg = new Registry();
    const a = istioStatsFactory.build(istioStatsFactory.parseConfig(undefined), ctx(reg)).forRoute(undefined)!();
    const b = istioStatsFactory.build(istioStatsFactory.parseConfig({}), ctx(reg)).forRoute(undefined)!();
    a.onComplete!(stream({ upstreamCluster: 'x', responseCode: 200 }));
    b.onComplete!(stream({ upstreamCluster: 'x', responseCode: 200 }));
    expect(await count(reg, 'destination_service="x"')).toBe(2);
  });

  it('honours disableHostHeaderFallback', async () => {
    const reg = new Registry();
    const f = istioStatsFactory.build(istioStatsFactory.parseConfig({ disable_host_header_fallback: true }), ctx(reg)).forRoute(undefined)!();
    f.onComplete!(stream({ direction: 'INBOUND', upstreamCluster: 'inbound|9080||', authority: 'evil.example:80', responseCode: 200 }));
    expect(await count(reg, 'destination_service="unknown"')).toBe(1);
    expect(await count(reg, 'evil.example')).toBe(0);
  });

  it('is off for a route with {disabled: true}', () => {
    const built = istioStatsFactory.build(istioStatsFactory.parseConfig({}), ctx(new Registry()));
    expect(built.forRoute(istioStatsFactory.parsePerRoute!({ disabled: true }))).toBeNull();
    expect(built.forRoute(istioStatsFactory.parsePerRoute!({ disabled: false }))).toBeTypeOf('function');
  });
});
