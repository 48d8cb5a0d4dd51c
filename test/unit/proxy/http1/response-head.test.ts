import { describe, expect, it } from 'vitest';
import { parseResponseHead, type ResponseHead, type ResponseHeadResult } from '../../../../src/proxy/http1/index.js';

const MAX = 8192;

function parse(text: string, method = 'GET', max = MAX): ResponseHeadResult {
  return parseResponseHead(Buffer.from(text, 'latin1'), 0, max, method);
}

describe('parseResponseHead: valid heads', () => {
  const cases: Array<[string, string, string, Partial<ResponseHead>]> = [
    [
      '200 with Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n',
      'GET',
      { versionMinor: 1, status: 200, reason: 'OK', contentLength: 5, chunked: false, keepAlive: true, noBody: false, untilClose: false },
    ],
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET', { chunked: true, untilClose: false, keepAlive: true }],
    ['gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'GET', { chunked: true }],
    ['TE not ending in chunked reads until close', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'GET', { chunked: false, untilClose: true, keepAlive: false }],
    ['no framing reads until close', 'HTTP/1.1 200 OK\r\nServer: x\r\n\r\n', 'GET', { untilClose: true, keepAlive: false, contentLength: -1 }],
    ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', 'GET', { noBody: true, untilClose: false, keepAlive: true }],
    ['304 has no body even with CL', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n', 'GET', { noBody: true, contentLength: 100 }],
    ['100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n', 'PUT', { status: 100, noBody: true }],
    [
      '101 Switching Protocols',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      'GET',
      { status: 101, noBody: true, connectionTokens: ['upgrade'] },
    ],
    ['HEAD response with CL', 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n', 'HEAD', { noBody: true, contentLength: 1234, untilClose: false }],
    ['HEAD response with chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HEAD', { noBody: true, chunked: false }],
    ['2xx to CONNECT', 'HTTP/1.1 200 Connection established\r\n\r\n', 'CONNECT', { noBody: true, untilClose: false }],
    ['4xx to CONNECT has a body', 'HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\n', 'CONNECT', { noBody: false, contentLength: 3 }],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'GET', { keepAlive: false, connectionTokens: ['close'] }],
    ['HTTP/1.0 default close', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n', 'GET', { versionMinor: 0, keepAlive: false }],
    ['HTTP/1.0 keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n', 'GET', { keepAlive: true }],
    ['empty reason', 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', 'GET', { reason: '' }],
    ['no SP and no reason', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', 'GET', { reason: '' }],
    ['reason with spaces and obs-text', 'HTTP/1.1 404 Not \tFound \xe9\r\nContent-Length: 0\r\n\r\n', 'GET', { reason: 'Not \tFound \xe9' }],
    ['status 999', 'HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n', 'GET', { status: 999 }],
  ];
  it.each(cases)('%s', (_n, text, method, want) => {
    const r = parse(text, method);
    if (r.kind !== 'ok') throw new Error(JSON.stringify(r));
    expect(r.consumed).toBe(text.length);
    expect(r.head).toMatchObject(want);
  });

  it('lower-cases names and leaves the body for the caller', () => {
    const text = 'HTTP/1.1 200 OK\r\nX-Thing:  A \r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n';
    const r = parse(text);
    if (r.kind !== 'ok') throw new Error(JSON.stringify(r));
    expect(r.head.headers.kv).toEqual(['x-thing', 'A', 'content-length', '2']);
    expect(text.slice(r.consumed, r.consumed + 2)).toBe('hi');
  });

  it('is incomplete at every split point', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\n';
    const buf = Buffer.from(text);
    for (let n = 0; n < buf.length; n++) expect(parseResponseHead(buf.subarray(0, n), 0, MAX, 'GET').kind).toBe('incomplete');
  });
});

describe('parseResponseHead: rejections', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', /version/],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n', /version/],
    ['not HTTP', 'ICY 200 OK\r\n\r\n', /HTTP\/1/],
    ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', /status/],
    ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', /status/],
    ['status 099', 'HTTP/1.1 099 X\r\n\r\n', /status/],
    ['missing SP after version', 'HTTP/1.1  200 OK\r\n\r\n', /status/],
    ['NUL in reason', 'HTTP/1.1 200 O\x00K\r\n\r\n', /reason/],
    ['bare LF', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', /bare LF/],
    ['bare CR in a header', 'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n', /bare CR/],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', /obs-fold/],
    ['space before colon', 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n', /whitespace between header name and colon/],
    ['duplicate CL, same value', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', /duplicate Content-Length/],
    ['duplicate CL, different values', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', /duplicate Content-Length/],
    ['CL list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n', /Content-Length/],
    ['CL sign', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n', /Content-Length/],
    ['CL + TE', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', /Transfer-Encoding together with Content-Length/],
    ['chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', /chunked more than once/],
    ['TE on HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1\.0/],
    ['NUL in value', 'HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n', /NUL/],
  ];
  it.each(cases)('%s', (_n, text, reason) => {
    const r = parse(text);
    expect(r.kind).toBe('error');
    if (r.kind !== 'error') return;
    expect(r.code).toBe('CAPA_ERR_UPSTREAM_PROTOCOL');
    expect(r.reason).toMatch(reason);
  });

  it('rejects an oversized head', () => {
    const text = 'HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(300) + '\r\n\r\n';
    expect(parse(text, 'GET', 100)).toMatchObject({ kind: 'error', code: 'CAPA_ERR_UPSTREAM_PROTOCOL' });
    expect(parse(text.slice(0, 150), 'GET', 100)).toMatchObject({ kind: 'error', code: 'CAPA_ERR_UPSTREAM_PROTOCOL' });
  });
});
