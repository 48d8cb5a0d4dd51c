import { describe, expect, it } from 'vitest';
import { parseRequestHead, type RequestHead, type RequestHeadResult } from '../../../../src/proxy/http1/index.js';

const MAX = 8192;

function parse(text: string, max = MAX): RequestHeadResult {
  return parseRequestHead(Buffer.from(text, 'latin1'), 0, max);
}

function ok(text: string): { head: RequestHead; consumed: number } {
  const r = parse(text);
  if (r.kind !== 'ok') throw new Error(`expected ok for ${JSON.stringify(text)}, got ${JSON.stringify(r)}`);
  return r;
}

const GET = 'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n';

describe('parseRequestHead: valid heads', () => {
  it('parses a simple GET', () => {
    const { head, consumed } = ok(GET);
    expect(consumed).toBe(GET.length);
    expect(head).toMatchObject({
      method: 'GET',
      target: '/index.html?q=1',
      versionMinor: 1,
      contentLength: -1,
      chunked: false,
      keepAlive: true,
      upgrade: '',
      expectContinue: false,
      host: 'example.com',
      connectionTokens: [],
    });
    expect(head.headers.kv).toEqual(['host', 'example.com', 'accept', '*/*']);
  });

  const cases: Array<[string, string, Partial<RequestHead>]> = [
    ['POST with Content-Length', 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n', { method: 'POST', contentLength: 11, chunked: false }],
    ['Content-Length 0', 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n', { contentLength: 0 }],
    ['Content-Length with leading zeros and OWS', 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: \t007  \r\n\r\n', { contentLength: 7 }],
    ['Content-Length 2^53-1', 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740991\r\n\r\n', { contentLength: 9007199254740991 }],
    ['chunked', 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n', { chunked: true, contentLength: -1 }],
    ['chunked, any case', 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ChUnKeD\r\n\r\n', { chunked: true }],
    ['gzip, chunked', 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', { chunked: true }],
    ['gzip then chunked on two lines', 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', { chunked: true }],
    ['HTTP/1.0 closes by default', 'GET / HTTP/1.0\r\n\r\n', { versionMinor: 0, keepAlive: false, host: '' }],
    ['HTTP/1.0 keep-alive', 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', { versionMinor: 0, keepAlive: true, connectionTokens: ['keep-alive'] }],
    ['HTTP/1.0 keep-alive and close', 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n', { keepAlive: false }],
    ['HTTP/1.1 Connection: close', 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', { keepAlive: false, connectionTokens: ['close'] }],
    [
      'websocket upgrade',
      'GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n',
      { upgrade: 'websocket', keepAlive: true, connectionTokens: ['keep-alive', 'upgrade'] },
    ],
    [
      'Upgrade: h2c is not an upgrade (Envoy: served as HTTP/1.1)',
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
      { upgrade: '', keepAlive: true, connectionTokens: ['upgrade', 'http2-settings'] },
    ],
    ['Upgrade without Connection: upgrade', 'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n', { upgrade: '' }],
    ['Connection: upgrade without Upgrade', 'GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n', { upgrade: '' }],
    ['two Connection headers', 'GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a\r\nconnection: X-B , ,close\r\n\r\n', { connectionTokens: ['x-a', 'x-b', 'close'], keepAlive: false }],
    ['Expect: 100-continue', 'PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n', { expectContinue: true }],
    ['other Expect', 'PUT /x HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n', { expectContinue: false }],
    ['leading CRLF skipped', '\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n', { method: 'GET', target: '/' }],
    ['absolute-form', 'GET http://example.com:80/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n', { target: 'http://example.com:80/a?b' }],
    ['absolute-form, userinfo and query only', 'GET http://u:p@example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n', { target: 'http://u:p@example.com?x' }],
    ['CONNECT authority-form', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', { method: 'CONNECT', target: 'example.com:443' }],
    ['CONNECT IPv6', 'CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n', { target: '[::1]:8443' }],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n', { method: 'OPTIONS', target: '*' }],
    ['extension method', 'PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n', { method: 'PURGE' }],
    ['empty header value', 'GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n', {}],
    ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n', {}],
    ['fragment in target', 'GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n', { target: '/a#frag' }],
  ];
  it.each(cases)('%s', (_name, text, want) => {
    const { head, consumed } = ok(text);
    expect(consumed).toBe(text.length);
    expect(head).toMatchObject(want);
  });

  it('lower-cases names and trims OWS from values', () => {
    const { head } = ok('GET / HTTP/1.1\r\nHOST:  a.b \r\nX-Mixed-Case:\tv1 v2\t \r\nx-lower: y\r\n\r\n');
    expect(head.headers.kv).toEqual(['host', 'a.b', 'x-mixed-case', 'v1 v2', 'x-lower', 'y']);
    expect(head.host).toBe('a.b');
  });

  it('keeps repeated headers in order', () => {
    const { head } = ok('GET / HTTP/1.1\r\nHost: h\r\nSet-Thing: 1\r\nset-thing: 2\r\n\r\n');
    expect(head.headers.getAll('set-thing')).toEqual(['1', '2']);
  });

  it('stops at the end of the head when requests are pipelined', () => {
    const first = 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n';
    const text = first + 'abcGET /b HTTP/1.1\r\nHost: h\r\n\r\n';
    const buf = Buffer.from(text, 'latin1');
    const r1 = parseRequestHead(buf, 0, MAX);
    expect(r1.kind === 'ok' && r1.consumed).toBe(first.length);
    const r2 = parseRequestHead(buf, first.length + 3, MAX);
    expect(r2.kind === 'ok' && r2.head.target).toBe('/b');
    expect(r2.kind === 'ok' && r2.consumed).toBe(text.length - first.length - 3);
  });

  it('counts skipped leading CRLFs in consumed, from a non-zero start', () => {
    const buf = Buffer.from('xx\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n', 'latin1');
    const r = parseRequestHead(buf, 2, MAX);
    expect(r.kind === 'ok' && r.consumed).toBe(buf.length - 2);
  });

  it('is incomplete at every split point of a valid head', () => {
    const texts = [
      GET,
      '\r\nPOST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nX: a\tb\r\n\r\n',
      'GET / HTTP/1.0\r\n\r\n',
    ];
    for (const text of texts) {
      const full = Buffer.from(text, 'latin1');
      for (let n = 0; n < full.length; n++) {
        const r = parseRequestHead(full.subarray(0, n), 0, MAX);
        expect(r, `prefix of ${n} bytes`).toEqual({ kind: 'incomplete' });
      }
      expect(parseRequestHead(full, 0, MAX).kind).toBe('ok');
    }
  });
});

describe('parseRequestHead: rejections', () => {
  const BAD = 'CAPA_ERR_BAD_REQUEST';
  const cases: Array<[string, string, string, RegExp]> = [
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: h\n\n', BAD, /bare LF/],
    ['bare LF after a header', 'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', BAD, /bare LF/],
    ['bare CR after a header', 'GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n', BAD, /bare CR/],
    ['bare CR in the request line', 'GET /\r HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /bare CR/],
    ['method not a token', 'G(T / HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /method/],
    ['empty method', ' / HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /method/],
    ['two spaces before target', 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /SP|request-target/],
    ['SP inside target', 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /version/],
    ['CTL in target', 'GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /request-target/],
    ['DEL in target', 'GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /request-target/],
    ['non-ASCII in target', 'GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /request-target/],
    ['relative target', 'GET index.html HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /request-target/],
    ['authority-form without CONNECT', 'GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /request-target/],
    ['CONNECT with a path', 'CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /CONNECT/],
    ['CONNECT without port', 'CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /CONNECT/],
    ['asterisk-form with GET', 'GET * HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /OPTIONS/],
    ['absolute-form with empty authority', 'GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /authority/],
    ['absolute-form with bad authority char', 'GET http://a{b/x HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /authority/],
    ['absolute-form with double @', 'GET http://a@b@c/ HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /@/],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', BAD, /version/],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: h\r\n\r\n', BAD, /version/],
    ['HTTP/0.9 style (no version)', 'GET /\r\n\r\n', BAD, /version/],
    ['lower-case version', 'GET / http/1.1\r\nHost: h\r\n\r\n', BAD, /version/],
    ['garbage version', 'GET / HTTP/1.1x\r\nHost: h\r\n\r\n', BAD, /version/],
    ['trailing SP after version', 'GET / HTTP/1.1 \r\nHost: h\r\n\r\n', BAD, /version/],
    ['PRI preface', 'PRI * HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /OPTIONS|PRI/],
    ['PRI with a path', 'PRI / HTTP/1.1\r\nHost: h\r\n\r\n', BAD, /PRI/],
    ['empty header name', 'GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n', BAD, /empty header name/],
    ['header name not a token', 'GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n', BAD, /header name/],
    ['non-ASCII header name', 'GET / HTTP/1.1\r\nHost: h\r\nX\xe9: v\r\n\r\n', BAD, /header name/],
    ['header line without colon', 'GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n', BAD, /colon/],
    ['whitespace before colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', BAD, /whitespace between header name and colon/],
    ['tab before colon', 'GET / HTTP/1.1\r\nHost\t: h\r\n\r\n', BAD, /whitespace between header name and colon/],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n', BAD, /obs-fold/],
    ['obs-fold with tab', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n', BAD, /obs-fold/],
    ['whitespace before the first header', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n', BAD, /obs-fold/],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n', BAD, /NUL/],
    ['DEL in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n', BAD, /header value/],
    ['VT in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\x0bb\r\n\r\n', BAD, /header value/],
    ['CR inside a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n', BAD, /bare CR/],
    ['LF inside a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n', BAD, /bare LF/],
    ['Content-Length: +5', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length: -1', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length: 0x5', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length: 5 , 5', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 , 5\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length: 5,5', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length with trailing HTAB', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\t\r\n\r\n', BAD, /HTAB after the Content-Length/],
    ['Content-Length: 5 5', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length empty', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n', BAD, /Content-Length/],
    ['Content-Length 2^53', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740992\r\n\r\n', BAD, /Content-Length too large/],
    ['Content-Length 20 digits', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551621\r\n\r\n', BAD, /Content-Length too large/],
    ['duplicate Content-Length, same value', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', BAD, /duplicate Content-Length/],
    ['duplicate Content-Length, different values', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n', BAD, /duplicate Content-Length/],
    ['CL.TE', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n', BAD, /Transfer-Encoding together with Content-Length/],
    ['TE.CL', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n', BAD, /Transfer-Encoding together with Content-Length/],
    ['TE.TE xchunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n', BAD, /final coding is not chunked/],
    ['TE.TE chunked, identity', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n', BAD, /final coding is not chunked/],
    ['TE.TE chunked then another TE line', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n', BAD, /final coding is not chunked/],
    ['TE.TE obs-fold', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n', BAD, /obs-fold|Transfer-Encoding/],
    ['TE.TE space before colon', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n', BAD, /whitespace between header name and colon/],
    ['TE.TE chunked twice', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', BAD, /chunked more than once/],
    ['TE.TE chunked on two lines', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', BAD, /chunked more than once/],
    ['TE.TE trailing tab', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n', BAD, /HTAB/],
    ['TE.TE quoted', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "chunked"\r\n\r\n', BAD, /final coding is not chunked/],
    ['TE.TE empty element', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n', BAD, /empty element/],
    ['TE.TE empty value', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n', BAD, /empty element/],
    ['TE.TE CTL-smuggled name', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\x0b: chunked\r\n\r\n', BAD, /header name/],
    ['TE.TE NUL in value', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x00\r\n\r\n', BAD, /NUL/],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', BAD, /HTTP\/1\.0/],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', BAD, /without a Host/],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', BAD, /more than one Host/],
    ['two Host headers, same value', 'GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', BAD, /more than one Host/],
    ['unknown coding before chunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo, chunked\r\n\r\n', 'CAPA_ERR_NOT_IMPLEMENTED', /transfer coding/],
    ['coding with parameters', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n', 'CAPA_ERR_NOT_IMPLEMENTED', /transfer coding/],
  ];
  it.each(cases)('%s', (_name, text, code, reason) => {
    const r = parse(text);
    expect(r.kind).toBe('error');
    if (r.kind !== 'error') return;
    expect(r.code).toBe(code);
    expect(r.reason).toMatch(reason);
  });

  it('reports bare LF before the head is complete', () => {
    const r = parse('GET / HTTP/1.1\nHost: h\n');
    expect(r).toMatchObject({ kind: 'error', code: 'CAPA_ERR_BAD_REQUEST' });
  });

  it('rejects an incomplete head larger than the limit with HEADERS_TOO_LARGE', () => {
    const text = 'GET / HTTP/1.1\r\nHost: h\r\nX-Big: ' + 'a'.repeat(200);
    const r = parse(text, 100);
    expect(r).toMatchObject({ kind: 'error', code: 'CAPA_ERR_HEADERS_TOO_LARGE' });
    if (r.kind === 'error') expect(r.reason).toMatch(/100 bytes/);
  });

  it('rejects a complete head larger than the limit with HEADERS_TOO_LARGE', () => {
    const text = 'GET / HTTP/1.1\r\nHost: h\r\nX-Big: ' + 'a'.repeat(200) + '\r\n\r\n';
    expect(parse(text, 100)).toMatchObject({ kind: 'error', code: 'CAPA_ERR_HEADERS_TOO_LARGE' });
    expect(parse(text, text.length).kind).toBe('ok');
    expect(parse(text, text.length - 1)).toMatchObject({ kind: 'error', code: 'CAPA_ERR_HEADERS_TOO_LARGE' });
  });

  it('counts leading CRLFs toward the limit', () => {
    const text = '\r\n'.repeat(60) + 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
    expect(parse(text, 100)).toMatchObject({ kind: 'error', code: 'CAPA_ERR_HEADERS_TOO_LARGE' });
  });

  it('stays incomplete up to the limit and no further', () => {
    const text = 'GET / HTTP/1.1\r\nHost: h\r\nX: ' + 'a'.repeat(100);
    expect(parse(text.slice(0, 100), 100).kind).toBe('incomplete');
    expect(parse(text.slice(0, 101), 100).kind).toBe('error');
  });
});
