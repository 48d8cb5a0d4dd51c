/** Schema rules of route configurations: each error names file:line:col, the key path and the reason. */
import { describe, expect, it } from 'vitest';
import { at, errorsOf, withRoute, yaml } from './helpers.js';

const R = 'listeners[0].routes.virtualHosts[0].routes[0]';

describe('routes', () => {
  it('match needs exactly one of prefix, path, safeRegex', () => {
    const t1 = withRoute('{ match: { prefix: /, path: /x }, route: { cluster: b } }');
    expect(errorsOf(t1)).toEqual([`${at(t1, '/x')}: ${R}.match.path: only one of 'prefix', 'path', 'safeRegex' may be set, got 'prefix' and 'path'`]);
    const t2 = withRoute('{ match: { caseSensitive: false }, route: { cluster: b } }');
    expect(errorsOf(t2)).toEqual([`${at(t2, '{ caseSensitive')}: ${R}.match: expected one of 'prefix', 'path', 'safeRegex'`]);
  });

  it('match needs to be there', () => {
    const t = withRoute('{ route: { cluster: b } }');
    expect(errorsOf(t)).toEqual([`${at(t, '{ route')}: ${R}.match: is required`]);
  });

  it('exactly one of route, redirect, directResponse', () => {
    const t1 = withRoute('{ match: { prefix: / } }');
    expect(errorsOf(t1)).toEqual([`${at(t1, '{ match')}: ${R}: expected one of 'route', 'redirect', 'directResponse'`]);
    const t2 = withRoute('{ match: { prefix: / }, route: { cluster: b }, directResponse: { status: 200 } }');
    expect(errorsOf(t2)).toEqual([`${at(t2, '{ status')}: ${R}.directResponse: only one of 'route', 'redirect', 'directResponse' may be set, got 'route' and 'directResponse'`]);
  });

  it('a regex that does not compile', () => {
    const t1 = withRoute('{ match: { safeRegex: { regex: "^/(a" } }, route: { cluster: b } }');
    expect(errorsOf(t1)).toEqual([`${at(t1, '"^/(a"')}: ${R}.match.safeRegex.regex: invalid regex: Invalid regular expression: /^/(a/: Unterminated group`]);
    const t2 = withRoute('{ match: { prefix: /, headers: [{ name: x, safeRegex: "[" }] }, route: { cluster: b } }');
    expect(errorsOf(t2)[0]).toMatch(new RegExp(`^${esc(at(t2, '"["'))}: ${esc(R)}\\.match\\.headers\\[0\\]\\.safeRegex: invalid regex: `));
    const t3 = withRoute('{ match: { prefix: / }, route: { cluster: b, regexRewrite: { pattern: "(", substitution: x } } }');
    expect(errorsOf(t3)[0]).toMatch(new RegExp(`^${esc(at(t3, '"("'))}: ${esc(R)}\\.route\\.regexRewrite\\.pattern: invalid regex: `));
  });

  it('route needs exactly one of cluster and weightedClusters', () => {
    const t = withRoute('{ match: { prefix: / }, route: { timeout: 1s } }');
    expect(errorsOf(t)).toEqual([`${at(t, '{ timeout')}: ${R}.route: expected one of 'cluster', 'weightedClusters'`]);
  });

  it('weighted clusters with total weight 0', () => {
    const t = withRoute('{ match: { prefix: / }, route: { weightedClusters: { clusters: [{ name: b, weight: 0 }] } } }');
    expect(errorsOf(t)).toEqual([`${at(t, '{ clusters')}: ${R}.route.weightedClusters: the total weight of weightedClusters must be greater than 0`]);
  });

  it('header matchers take one matcher', () => {
    const t1 = withRoute('{ match: { prefix: /, headers: [{ name: x, exact: a, prefix: b }] }, route: { cluster: b } }');
    expect(errorsOf(t1)).toEqual([`${at(t1, 'b }')}: ${R}.match.headers[0].prefix: only one matcher may be set, got 'exact' and 'prefix'`]);
    const t2 = withRoute('{ match: { prefix: /, headers: [{ name: x, stringMatch: {} }] }, route: { cluster: b } }');
    expect(errorsOf(t2)).toEqual([`${at(t2, '{} }')}: ${R}.match.headers[0].stringMatch: expected one of 'exact', 'prefix', 'suffix', 'contains', 'safeRegex'`]);
  });

  it('retry policies', () => {
    const t1 = withRoute('{ match: { prefix: / }, route: { cluster: b, retryPolicy: { retryOn: "5xx,sometimes" } } }');
    expect(errorsOf(t1)[0]).toMatch(new RegExp(`^${esc(at(t1, '"5xx'))}: ${esc(R)}\\.route\\.retryPolicy\\.retryOn\\[1\\]: unknown retryOn condition 'sometimes' \\(known: 5xx, `));
    const t2 = withRoute('{ match: { prefix: / }, route: { cluster: b, retryPolicy: { retryOn: reset, retryBackOff: { baseInterval: 1s, maxInterval: 10ms } } } }');
    expect(errorsOf(t2)).toEqual([`${at(t2, '10ms')}: ${R}.route.retryPolicy.retryBackOff.maxInterval: maxInterval must not be smaller than baseInterval`]);
  });

  it('redirect response codes and exclusive fields', () => {
    const t1 = withRoute('{ match: { prefix: / }, redirect: { responseCode: 418 } }');
    expect(errorsOf(t1)).toEqual([
      `${at(t1, '418')}: ${R}.redirect.responseCode: expected one of MOVED_PERMANENTLY, FOUND, SEE_OTHER, TEMPORARY_REDIRECT, PERMANENT_REDIRECT or 301, 302, 303, 307, 308`,
    ]);
    const t2 = withRoute('{ match: { prefix: / }, redirect: { pathRedirect: /a, prefixRewrite: /b } }');
    expect(errorsOf(t2)).toEqual([`${at(t2, '/b')}: ${R}.redirect.prefixRewrite: 'pathRedirect' and 'prefixRewrite' cannot both be set`]);
  });

  it('direct response status range', () => {
    const t = withRoute('{ match: { prefix: / }, directResponse: { status: 700 } }');
    expect(errorsOf(t)).toEqual([`${at(t, '700')}: ${R}.directResponse.status: expected an HTTP status 100-599`]);
  });

  it('hash policies take one kind', () => {
    const t = withRoute('{ match: { prefix: / }, route: { cluster: b, hashPolicy: [{ terminal: true }] } }');
    expect(errorsOf(t)).toEqual([`${at(t, '{ terminal')}: ${R}.route.hashPolicy[0]: expected one of 'header', 'cookie', 'connectionProperties', 'queryParameter'`]);
  });

  it('virtual host domains', () => {
    const text = yaml`
      routes:
        - name: r
          virtualHosts:
            - name: a
              domains: ["a.com", "*.b.*"]
            - name: b
              domains: ["A.com"]
            - name: a
      `;
    expect(errorsOf(text)).toEqual([
      `${at(text, '"*.b.*"')}: routes[0].virtualHosts[0].domains[1]: invalid domain '*.b.*': a '*' may only stand alone, start ('*.example.com') or end ('example.*') it`,
      `${at(text, '"A.com"')}: routes[0].virtualHosts[1].domains[0]: domain 'a.com' is already used by virtual host 'a'`,
      `${at(text, 'a\n', 1)}: routes[0].virtualHosts[2].name: duplicate virtual host name 'a'`,
    ]);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
