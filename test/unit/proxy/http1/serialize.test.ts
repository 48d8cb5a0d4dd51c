import { describe, expect, it } from 'vitest';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { STATUS_TEXT, parseRequestHead, parseResponseHead, serializeRequestHead, serializeResponseHead } from '../../../../src/proxy/http1/index.js';

describe('serialize', () => {
  it('writes a request head that parses back to the same thing', () => {
    const h = new HeaderMap(['host', 'example.com', 'x-a', '1', 'x-a', '2']);
    const s = serializeRequestHead('POST', '/p?q=1', h);
    expect(s).toBe('POST /p?q=1 HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-a: 2\r\n\r\n');
    const r = parseRequestHead(Buffer.from(s), 0, 8192);
    expect(r.kind === 'ok' && r.head.headers.kv).toEqual(h.kv);
  });

  it('writes a response head, defaulting the reason from STATUS_TEXT', () => {
    expect(serializeResponseHead(404, '', new HeaderMap(['content-length', '0']))).toBe('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    expect(serializeResponseHead(200, 'Fine', new HeaderMap())).toBe('HTTP/1.1 200 Fine\r\n\r\n');
    const r = parseResponseHead(Buffer.from(serializeResponseHead(503, '', new HeaderMap())), 0, 8192, 'GET');
    expect(r.kind === 'ok' && r.head.status).toBe(503);
    expect(STATUS_TEXT[429]).toBe('Too Many Requests');
  });

  it('refuses header injection and malformed parts', () => {
    expect(() => serializeRequestHead('GET', '/', new HeaderMap(['x', 'a\r\nInjected: 1']))).toThrow(/CR, LF or NUL/);
    expect(() => serializeRequestHead('GET', '/', new HeaderMap(['x', 'a\nb']))).toThrow(/CR, LF or NUL/);
    expect(() => serializeRequestHead('GET', '/', new HeaderMap(['bad name', 'v']))).toThrow(/header name/);
    expect(() => serializeRequestHead('GET', '/', new HeaderMap(['', 'v']))).toThrow(/header name/);
    expect(() => serializeRequestHead('GE T', '/', new HeaderMap())).toThrow(/method/);
    expect(() => serializeRequestHead('GET', '/a b', new HeaderMap())).toThrow(/request-target/);
    expect(() => serializeRequestHead('GET', '', new HeaderMap())).toThrow(/request-target/);
    expect(() => serializeResponseHead(200, 'OK\r\nX: y', new HeaderMap())).toThrow(/reason/);
    expect(() => serializeResponseHead(42, '', new HeaderMap())).toThrow(/status/);
  });
});
