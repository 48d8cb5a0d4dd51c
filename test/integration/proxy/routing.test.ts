/**
 * Routing through a real sidecar: virtual host and route matching, route actions (weighted
 * clusters, redirects, direct responses, rewrites, header mutations) and retries / timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, type Reply } from '../../helpers/http.js';
import { countRequests, hasFlag, runMany, tally, waitForCount } from '../../helpers/traffic.js';

const LISTENER = `
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routeConfig: rc
`;

// === Matching ===

describe('route matching', () => {
  let sc: Running;
  let port: number;
  const direct = (body: string) => `directResponse: { status: 200, body: "${body}" }`;

  beforeAll(async () => {
    sc = await startSidecar(`${LISTENER}
routes:
  - name: rc
    virtualHosts:
      - name: exact
        domains: ["api.example.com"]
        routes: [{ match: { prefix: / }, ${direct('vh-exact')} }]
      - name: exact-port
        domains: ["api.example.com:8443"]
        routes: [{ match: { prefix: / }, ${direct('vh-exact-port')} }]
      - name: suffix
        domains: ["*.example.com"]
        routes: [{ match: { prefix: / }, ${direct('vh-suffix')} }]
      - name: suffix-longer
        domains: ["*.svc.example.com"]
        routes: [{ match: { prefix: / }, ${direct('vh-suffix-longer')} }]
      - name: prefix
        domains: ["foo.*"]
        routes: [{ match: { prefix: / }, ${direct('vh-prefix')} }]
      - name: default
        domains: ["*"]
        routes:
          - { match: { path: /exact }, ${direct('r-path')} }
          - { match: { path: /CaseLess, caseSensitive: false }, ${direct('r-path-ci')} }
          - { match: { safeRegex: { regex: "/items/[0-9]+" } }, ${direct('r-regex')} }
          - { match: { prefix: /CI/, caseSensitive: false }, ${direct('r-prefix-ci')} }
          - { match: { prefix: /m, methods: [POST, PUT] }, ${direct('r-method')} }
          - { match: { prefix: /h, headers: [{ name: X-Exact, exact: "yes" }] }, ${direct('r-h-exact')} }
          - { match: { prefix: /h, headers: [{ name: x-prefix, prefix: "abc" }] }, ${direct('r-h-prefix')} }
          - { match: { prefix: /h, headers: [{ name: x-present, present: true }] }, ${direct('r-h-present')} }
          - { match: { prefix: /h, headers: [{ name: x-regex, safeRegex: { regex: "v[0-9]+" } }] }, ${direct('r-h-regex')} }
          - { match: { prefix: /h, headers: [{ name: x-inv, exact: "bad", invertMatch: true }] }, ${direct('r-h-invert')} }
          - { match: { prefix: /h, headers: [{ name: x-gone, present: false }, { name: x-need, present: true }] }, ${direct('r-h-absent')} }
          - { match: { prefix: /h }, ${direct('r-h-fallback')} }
          - { match: { prefix: /q, queryParameters: [{ name: debug, exact: "1" }] }, ${direct('r-q-exact')} }
          - { match: { prefix: /q, queryParameters: [{ name: trace, present: true }] }, ${direct('r-q-present')} }
          - { match: { prefix: /q }, ${direct('r-q-fallback')} }
          - { match: { prefix: /order }, ${direct('r-order-first')} }
          - { match: { path: /order/specific }, ${direct('r-order-second')} }
          - { match: { prefix: /known }, ${direct('r-known')} }
clusters: []
`);
    port = sc.port('main');
  });
  afterAll(async () => {
    await sc.stop();
  });

  const get = async (host: string, path = '/', headers: Record<string, string> = {}, method = 'GET'): Promise<string> => {
    const r = await request(port, { method, path, headers: { host, ...headers } });
    return r.status === 200 ? r.body : `${r.status}`;
  };

  it('selects virtual hosts by Host: exact, longest *.suffix, prefix*, then *, port with and without', async () => {
    const cases: [string, string][] = [
      ['api.example.com', 'vh-exact'],
      ['API.Example.COM', 'vh-exact'],
      ['api.example.com:8443', 'vh-exact-port'],
      ['api.example.com:9999', 'vh-exact'],
      ['x.example.com', 'vh-suffix'],
      ['x.example.com:8080', 'vh-suffix'],
      ['a.b.example.com', 'vh-suffix'],
      ['db.svc.example.com', 'vh-suffix-longer'],
      ['db.svc.example.com:5432', 'vh-suffix-longer'],
      ['foo.bar', 'vh-prefix'],
      ['foo.bar:1234', 'vh-prefix'],
      ['example.com', 'r-known'],
      ['other.test', 'r-known'],
      ['other.test:80', 'r-known'],
    ];
    for (const [host, want] of cases) expect(await get(host, '/known'), host).toBe(want);
  });

  it('matches paths: exact path, caseSensitive false, anchored safeRegex, prefix', async () => {
    const h = 'any.test';
    expect(await get(h, '/exact')).toBe('r-path');
    expect(await get(h, '/exact?x=1')).toBe('r-path'); // the query is not part of the path
    expect(await get(h, '/exact/more')).toBe('404');
    expect(await get(h, '/EXACT')).toBe('404'); // case-sensitive by default
    expect(await get(h, '/caseless')).toBe('r-path-ci');
    expect(await get(h, '/CASELESS')).toBe('r-path-ci');
    expect(await get(h, '/items/42')).toBe('r-regex');
    expect(await get(h, '/items/42?q=z')).toBe('r-regex');
    expect(await get(h, '/items/4x')).toBe('404');
    expect(await get(h, '/x/items/42')).toBe('404'); // safeRegex must match the whole path
    expect(await get(h, '/ci/thing')).toBe('r-prefix-ci');
    expect(await get(h, '/Ci/Thing')).toBe('r-prefix-ci');
  });

  it('matches methods', async () => {
    expect(await get('any.test', '/m', {}, 'POST')).toBe('r-method');
    expect(await get('any.test', '/m', {}, 'PUT')).toBe('r-method');
    expect(await get('any.test', '/m', {}, 'GET')).toBe('404');
  });

  it('matches headers: exact, prefix, present, regex, invertMatch, absent (present: false)', async () => {
    const h = 'any.test';
    expect(await get(h, '/h', { 'x-exact': 'yes' })).toBe('r-h-exact');
    expect(await get(h, '/h', { 'x-exact': 'yes!' })).toBe('r-h-fallback');
    expect(await get(h, '/h', { 'x-exact': 'YES' })).toBe('r-h-fallback');
    expect(await get(h, '/h', { 'x-prefix': 'abcdef' })).toBe('r-h-prefix');
    expect(await get(h, '/h', { 'x-prefix': 'xabc' })).toBe('r-h-fallback');
    expect(await get(h, '/h', { 'x-present': '' })).toBe('r-h-present');
    expect(await get(h, '/h', { 'x-present': 'anything' })).toBe('r-h-present');
    expect(await get(h, '/h', { 'x-regex': 'v12' })).toBe('r-h-regex');
    expect(await get(h, '/h', { 'x-regex': 'xv12' })).toBe('r-h-fallback'); // the regex is anchored
    expect(await get(h, '/h', { 'x-inv': 'good' })).toBe('r-h-invert');
    expect(await get(h, '/h', { 'x-inv': 'bad' })).toBe('r-h-fallback');
    // Envoy: a string matcher never matches an absent header, inverted or not.
    expect(await get(h, '/h', {})).toBe('r-h-fallback');
    expect(await get(h, '/h', { 'x-need': '1' })).toBe('r-h-absent');
    expect(await get(h, '/h', { 'x-need': '1', 'x-gone': 'here' })).toBe('r-h-fallback');
  });

  it('matches query parameters: exact and present', async () => {
    const h = 'any.test';
    expect(await get(h, '/q?debug=1')).toBe('r-q-exact');
    expect(await get(h, '/q?a=b&debug=1')).toBe('r-q-exact');
    expect(await get(h, '/q?debug=2')).toBe('r-q-fallback');
    expect(await get(h, '/q?debug')).toBe('r-q-fallback');
    expect(await get(h, '/q?trace')).toBe('r-q-present');
    expect(await get(h, '/q?trace=')).toBe('r-q-present');
    expect(await get(h, '/q?debug=2&trace=on')).toBe('r-q-present');
    expect(await get(h, '/q?tracer=1')).toBe('r-q-fallback');
  });

  it('takes the first matching route in order', async () => {
    expect(await get('any.test', '/order/specific')).toBe('r-order-first');
  });

  it('answers 404 NR with a body naming the request when no route matches', async () => {
    const before = await countRequests(sc.sidecar.adminPort, (l) => l.response_code === '404' && hasFlag(l, 'NR'));
    const r = await request(port, { path: '/nowhere?z=1', headers: { host: 'lost.test' } });
    expect(r.status).toBe(404);
    expect(r.body).toContain('GET');
    expect(r.body).toContain('lost.test');
    expect(r.body).toContain('/nowhere');
    const after = await waitForCount(sc.sidecar.adminPort, (l) => l.response_code === '404' && hasFlag(l, 'NR'), before + 1);
    expect(after).toBe(before + 1);
  });
});

// === Actions ===

describe('route actions', () => {
  let a: Upstream;
  let b: Upstream;
  let sc: Running;
  let port: number;

  beforeAll(async () => {
    a = await startUpstream('a', (req, res, body, u) => {
      res.setHeader('x-upstream', u.name);
      res.setHeader('x-up-remove', 'secret');
      res.setHeader('x-up-keep', 'kept');
      res.setHeader('x-powered-by', 'node');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: u.name, url: req.url, headers: req.headers, body }));
    });
    b = await startUpstream('b');
    sc = await startSidecar(`${LISTENER}
routes:
  - name: rc
    requestHeadersToAdd:
      - { name: x-rc, value: rc }
      - { name: x-level, value: rc, action: overwrite }
    requestHeadersToRemove: [x-remove-rc]
    responseHeadersToAdd:
      - { name: x-resp-rc, value: rc }
    responseHeadersToRemove: [x-powered-by]
    virtualHosts:
      - name: redirects
        domains: ["redirect.test", "old.example.com"]
        routes:
          - { match: { path: /r/scheme }, redirect: { schemeRedirect: https } }
          - { match: { path: /r/https }, redirect: { httpsRedirect: true } }
          - { match: { path: /r/host }, redirect: { hostRedirect: new.example.com } }
          - { match: { path: /r/port }, redirect: { portRedirect: 9443 } }
          - { match: { path: /r/path }, redirect: { pathRedirect: /elsewhere, responseCode: TEMPORARY_REDIRECT } }
          - { match: { prefix: /r/old/ }, redirect: { prefixRewrite: /new/, responseCode: PERMANENT_REDIRECT } }
          - { match: { path: /r/strip }, redirect: { stripQuery: true, responseCode: FOUND } }
          - { match: { path: /r/all }, redirect: { schemeRedirect: https, hostRedirect: secure.example.com, portRedirect: 8443, pathRedirect: /login, responseCode: 303 } }
          - { match: { path: /r/pathq }, redirect: { pathRedirect: "/login?from=redirect", stripQuery: true } }
      - name: main
        domains: ["*"]
        requestHeadersToAdd:
          - { name: x-vh, value: vh }
          - { name: x-level, value: vh, action: overwrite }
        requestHeadersToRemove: [x-remove-vh]
        responseHeadersToAdd:
          - { name: x-resp-vh, value: vh }
        routes:
          - match: { prefix: /w }
            route:
              weightedClusters:
                clusters: [{ name: a, weight: 80 }, { name: b, weight: 20 }]
          - match: { path: /direct }
            directResponse: { status: 418, body: { inlineString: "short and stout\\n" } }
          - match: { path: /direct-empty }
            directResponse: { status: 204 }
          - match: { prefix: /api/ }
            route: { cluster: a, prefixRewrite: / }
          - match: { prefix: /old-api/ }
            route: { cluster: a, prefixRewrite: /v2/ }
          - match: { prefix: /service/ }
            route:
              cluster: a
              regexRewrite: { pattern: { regex: "^/service/([^/]+)(/.*)$" }, substitution: "\\\\2/instance/\\\\1" }
          - match: { prefix: /hostrw }
            route: { cluster: a, hostRewriteLiteral: rewritten.internal }
          - match: { prefix: /mut }
            route: { cluster: a }
            requestHeadersToAdd:
              - { name: x-append, value: new }
              - header: { key: x-over, value: new }
                appendAction: OVERWRITE_IF_EXISTS_OR_ADD
              - { name: x-absent, value: new, action: addIfAbsent }
              - { name: x-level, value: route, action: overwrite }
            requestHeadersToRemove: [x-drop]
            responseHeadersToAdd:
              - { name: x-resp-route, value: route }
              - { name: x-up-keep, value: added }
            responseHeadersToRemove: [x-up-remove]
          - match: { prefix: / }
            route: { cluster: a }
clusters:
  - name: a
    endpoints: ["127.0.0.1:${a.port}"]
  - name: b
    endpoints: ["127.0.0.1:${b.port}"]
`);
    port = sc.port('main');
  });
  afterAll(async () => {
    await sc.stop();
    await a.close();
    await b.close();
  });

  const seenBy = (r: Reply) => JSON.parse(r.body) as { upstream: string; url: string; headers: Record<string, string> };

  it('splits weighted clusters 80/20 within ±5% over 2000 requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    try {
      const ups = await runMany(2000, 16, async () => {
        const r = await request(port, { path: '/w', agent });
        expect(r.status).toBe(200);
        return String(r.headers['x-upstream']);
      });
      const t = tally(ups);
      expect((t.get('a') ?? 0) + (t.get('b') ?? 0)).toBe(2000);
      const shareA = (t.get('a') ?? 0) / 2000;
      expect(shareA).toBeGreaterThanOrEqual(0.75);
      expect(shareA).toBeLessThanOrEqual(0.85);
    } finally {
      agent.destroy();
    }
  });

  it('redirects: scheme, host, port, path, prefixRewrite, responseCode, stripQuery', async () => {
    const cases: [string, string, number, string][] = [
      ['redirect.test', '/r/scheme?x=1', 301, 'https://redirect.test/r/scheme?x=1'],
      ['redirect.test', '/r/https', 301, 'https://redirect.test/r/https'],
      // Envoy drops the port when the scheme changes and it was the old scheme's default, keeps it otherwise.
      ['redirect.test:80', '/r/https', 301, 'https://redirect.test/r/https'],
      ['redirect.test:8080', '/r/https', 301, 'https://redirect.test:8080/r/https'],
      ['old.example.com', '/r/host?a=b', 301, 'http://new.example.com/r/host?a=b'],
      ['redirect.test:8080', '/r/host', 301, 'http://new.example.com/r/host'],
      ['redirect.test:8080', '/r/port', 301, 'http://redirect.test:9443/r/port'],
      ['redirect.test', '/r/path?keep=1', 307, 'http://redirect.test/elsewhere?keep=1'],
      ['redirect.test', '/r/old/page?x=1', 308, 'http://redirect.test/new/page?x=1'],
      ['redirect.test', '/r/strip?secret=1&b=2', 302, 'http://redirect.test/r/strip'],
      ['redirect.test:8080', '/r/all?x=1', 303, 'https://secure.example.com:8443/login?x=1'],
      // A query in pathRedirect replaces the request's and is kept despite stripQuery.
      ['redirect.test', '/r/pathq?mine=1', 301, 'http://redirect.test/login?from=redirect'],
    ];
    for (const [host, path, status, location] of cases) {
      const r = await request(port, { path, headers: { host } });
      expect(r.status, `${host}${path}`).toBe(status);
      expect(r.headers.location, `${host}${path}`).toBe(location);
    }
    expect(a.seen.filter((s) => s.url.startsWith('/r/'))).toHaveLength(0);
  });

  it('answers direct responses with their status and body', async () => {
    const r = await request(port, { path: '/direct' });
    expect(r.status).toBe(418);
    expect(r.body).toBe('short and stout\n');
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength('short and stout\n')));
    const e = await request(port, { path: '/direct-empty' });
    expect(e.status).toBe(204);
    expect(e.body).toBe('');
    expect(a.seen.filter((s) => s.url.startsWith('/direct'))).toHaveLength(0);
  });

  it('rewrites the path prefix (/api/ → /) and sets x-envoy-original-path', async () => {
    const r = await request(port, { path: '/api/users/7?x=1' });
    const s = seenBy(r);
    expect(s.url).toBe('/users/7?x=1');
    expect(s.headers['x-envoy-original-path']).toBe('/api/users/7?x=1');
  });

  it('rewrites the path prefix to another prefix (/old-api/ → /v2/)', async () => {
    const s = seenBy(await request(port, { path: '/old-api/things' }));
    expect(s.url).toBe('/v2/things');
    expect(s.headers['x-envoy-original-path']).toBe('/old-api/things');
  });

  it('rewrites the path with a regex and capture groups', async () => {
    const s = seenBy(await request(port, { path: '/service/foo/v1/api?q=2' }));
    expect(s.url).toBe('/v1/api/instance/foo?q=2');
    expect(s.headers['x-envoy-original-path']).toBe('/service/foo/v1/api?q=2');
  });

  it('does not set x-envoy-original-path when nothing was rewritten', async () => {
    const s = seenBy(await request(port, { path: '/plain' }));
    expect(s.url).toBe('/plain');
    expect(s.headers['x-envoy-original-path']).toBeUndefined();
  });

  it('rewrites the Host header with hostRewriteLiteral', async () => {
    const s = seenBy(await request(port, { path: '/hostrw', headers: { host: 'original.test' } }));
    expect(s.headers.host).toBe('rewritten.internal');
  });

  it('adds (append / overwrite / addIfAbsent) and removes request headers at route, vhost and route-config level', async () => {
    const s = seenBy(
      await request(port, {
        path: '/mut',
        headers: { 'x-append': 'old', 'x-over': 'old', 'x-absent': 'old', 'x-drop': 'd', 'x-remove-vh': 'v', 'x-remove-rc': 'r', 'x-level': 'client' },
      }),
    );
    const h = s.headers;
    expect(h['x-append']).toBe('old, new');
    expect(h['x-over']).toBe('new');
    expect(h['x-absent']).toBe('old');
    expect(h['x-drop']).toBeUndefined();
    expect(h['x-remove-vh']).toBeUndefined();
    expect(h['x-remove-rc']).toBeUndefined();
    expect(h['x-vh']).toBe('vh');
    expect(h['x-rc']).toBe('rc');
    // Envoy's default order: route, then virtual host, then route configuration; the least specific overwrite wins.
    expect(h['x-level']).toBe('rc');
    const s2 = seenBy(await request(port, { path: '/mut' }));
    expect(s2.headers['x-absent']).toBe('new');
    expect(s2.headers['x-append']).toBe('new');
    expect(s2.headers['x-over']).toBe('new');
  });

  it('adds and removes response headers at route, vhost and route-config level', async () => {
    const r = await request(port, { path: '/mut' });
    expect(r.status).toBe(200);
    expect(r.headers['x-up-remove']).toBeUndefined();
    expect(r.headers['x-powered-by']).toBeUndefined();
    expect(r.headers['x-up-keep']).toBe('kept, added');
    expect(r.headers['x-resp-route']).toBe('route');
    expect(r.headers['x-resp-vh']).toBe('vh');
    expect(r.headers['x-resp-rc']).toBe('rc');
    // A route without its own mutations still gets the vhost and route-config ones.
    const p = await request(port, { path: '/plain' });
    expect(p.headers['x-up-remove']).toBe('secret');
    expect(p.headers['x-powered-by']).toBeUndefined();
    expect(p.headers['x-resp-vh']).toBe('vh');
    expect(p.headers['x-resp-rc']).toBe('rc');
    expect(p.headers['x-resp-route']).toBeUndefined();
    expect(seenBy(p).headers['x-vh']).toBe('vh');
  });
});

// === Retries and timeouts ===

describe('retries and timeouts', () => {
  let up: Upstream;
  let sc: Running;
  let port: number;
  let closedPort: number;
  const attempts = new Map<string, number>();
  const hung: http.ServerResponse[] = [];

  beforeAll(async () => {
    // The path says how to behave; the last segment keys the attempt counter.
    up = await startUpstream('flaky', (req, res, _body, u) => {
      const url = req.url ?? '/';
      const n = (attempts.get(url) ?? 0) + 1;
      attempts.set(url, n);
      res.setHeader('x-upstream', u.name);
      res.setHeader('x-attempt', String(n));
      const reply = (status: number, body: string) => {
        res.statusCode = status;
        res.end(body);
      };
      if (url.startsWith('/fail-twice/')) return n <= 2 ? reply(503, `fail ${n}`) : reply(200, `ok after ${n}`);
      if (url.startsWith('/always-503/')) return reply(503, `upstream failure ${n}`);
      if (url.startsWith('/reset-once/')) return n === 1 ? void req.socket.destroy() : reply(200, `ok after ${n}`);
      if (url.startsWith('/conflict-once/')) return n === 1 ? reply(409, 'conflict') : reply(200, `ok after ${n}`);
      if (url.startsWith('/hang-first/')) {
        if (n === 1) {
          hung.push(res);
          return;
        }
        return reply(200, `ok after ${n}`);
      }
      if (url.startsWith('/slow/')) {
        setTimeout(() => reply(200, 'slow ok'), Number(url.split('/')[2]));
        return;
      }
      reply(200, 'ok');
    });
    closedPort = await freePort();
    sc = await startSidecar(`${LISTENER}
routes:
  - name: rc
    virtualHosts:
      - name: main
        domains: ["*"]
        routes:
          - match: { prefix: /retry5xx/ }
            route:
              cluster: flaky
              prefixRewrite: /
              retryPolicy: { retryOn: 5xx, numRetries: 2, retryBackOff: { baseInterval: 5ms } }
          - match: { prefix: /retry409/ }
            route:
              cluster: flaky
              prefixRewrite: /
              retryPolicy: { retryOn: retriable-status-codes, retriableStatusCodes: [409], numRetries: 2, retryBackOff: { baseInterval: 5ms } }
          - match: { prefix: /pertry/ }
            route:
              cluster: flaky
              prefixRewrite: /
              retryPolicy: { retryOn: 5xx, numRetries: 2, perTryTimeout: 200ms, retryBackOff: { baseInterval: 5ms } }
          - match: { prefix: /cf/ }
            route:
              cluster: half-dead
              prefixRewrite: /
              retryPolicy: { retryOn: connect-failure, numRetries: 3, retryBackOff: { baseInterval: 5ms } }
          - match: { prefix: /timeout/ }
            route: { cluster: flaky, prefixRewrite: /, timeout: 300ms }
          - match: { prefix: /no-timeout/ }
            route: { cluster: flaky, prefixRewrite: /, timeout: 0s }
clusters:
  - name: flaky
    endpoints: ["127.0.0.1:${up.port}"]
  - name: half-dead
    endpoints: ["127.0.0.1:${closedPort}", "127.0.0.1:${up.port}"]
    # Up to 4 requests may wait to retry at once; the default maxRetries (3) would overflow one.
    circuitBreakers: { maxRetries: 16 }
`);
    port = sc.port('main');
  });
  afterAll(async () => {
    for (const r of hung) r.destroy();
    await sc.stop();
    await up.close();
  });

  it('retries a GET on 5xx: fails twice, then 200 after 3 attempts', async () => {
    const r = await request(port, { path: '/retry5xx/fail-twice/get' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok after 3');
    expect(attempts.get('/fail-twice/get')).toBe(3);
  });

  it('retries a GET whose connection was reset before the response (5xx implies reset)', async () => {
    const r = await request(port, { path: '/retry5xx/reset-once/a' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok after 2');
    expect(attempts.get('/reset-once/a')).toBe(2);
  });

  it('does not retry a POST with the same policy', async () => {
    const r = await request(port, { method: 'POST', path: '/retry5xx/fail-twice/post', body: 'payload' });
    expect(r.status).toBe(503);
    expect(r.body).toBe('fail 1');
    expect(attempts.get('/fail-twice/post')).toBe(1);
  });

  it('retries retriable-status-codes [409]', async () => {
    const r = await request(port, { path: '/retry409/conflict-once/a' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok after 2');
    expect(attempts.get('/conflict-once/a')).toBe(2);
    // 5xx is not in that policy: one attempt only.
    const f = await request(port, { path: '/retry409/fail-twice/409' });
    expect(f.status).toBe(503);
    expect(attempts.get('/fail-twice/409')).toBe(1);
  });

  it('retries connect failures onto the live endpoint', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const replies = await runMany(20, 4, () => request(port, { path: '/cf/x', agent }));
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.headers['x-upstream']).toBe('flaky');
      }
    } finally {
      agent.destroy();
    }
  });

  it('passes the last upstream 5xx through when retries are exhausted, with flag URX', async () => {
    const admin = sc.sidecar.adminPort;
    const urx = (l: Record<string, string>) => l.response_code === '503' && hasFlag(l, 'URX');
    const before = await countRequests(admin, urx);
    const r = await request(port, { path: '/retry5xx/always-503/x' });
    expect(r.status).toBe(503);
    expect(r.body).toBe('upstream failure 3');
    expect(attempts.get('/always-503/x')).toBe(3);
    expect(await waitForCount(admin, urx, before + 1)).toBe(before + 1);
  });

  it('retries after a per-try timeout', async () => {
    const t0 = Date.now();
    const r = await request(port, { path: '/pertry/hang-first/a' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok after 2');
    expect(attempts.get('/hang-first/a')).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('answers 504 UT when the route timeout passes', async () => {
    const admin = sc.sidecar.adminPort;
    const ut = (l: Record<string, string>) => l.response_code === '504' && hasFlag(l, 'UT');
    const before = await countRequests(admin, ut);
    const t0 = Date.now();
    const r = await request(port, { path: '/timeout/slow/1500' });
    const took = Date.now() - t0;
    expect(r.status).toBe(504);
    expect(r.body).toMatch(/timeout/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1400);
    expect(await waitForCount(admin, ut, before + 1)).toBe(before + 1);
  });

  it('timeout: 0s disables the route timeout', async () => {
    // A slow answer (longer than the 300ms route above) still arrives: 0 means "no timeout", not "expire at once".
    const r = await request(port, { path: '/no-timeout/slow/400' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('slow ok');
  });
});
