/**
 * When an HTTP/2 field list is malformed (RFC 9113 §8.1.1, §8.2): request heads, response heads
 * and trailer sections. Either end answers a malformed list with a stream error (RST_STREAM
 * PROTOCOL_ERROR). HPACK carries any octets, so for a proxy this is also what keeps CR, LF, a
 * space or a colon in a name or value from being written into an HTTP/1.1 head or trailer section
 * on the next hop (request smuggling, response splitting).
 */

/** Fields RFC 9113 §8.2.2 forbids in HTTP/2 (connection-specific). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

const CR_LF_NUL = /[\r\n\0]/;

/** A field value holds CR, LF or NUL (RFC 9113 §8.2.1). */
export function badValue(value: string): boolean {
  return CR_LF_NUL.test(value);
}

/**
 * Why a regular (not pseudo-) field is malformed, or null: a name with uppercase letters, a
 * control character, a space, a colon or a non-ASCII octet; a connection-specific field; `te`
 * other than "trailers"; a value with CR, LF or NUL.
 */
export function regularFieldError(name: string, value: string): string | null {
  if (name.length === 0) return 'empty header name';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return `header name ${JSON.stringify(name)} is not lowercase`;
    if (c <= 0x20 || c >= 0x7f || c === 0x3a) return `header name ${JSON.stringify(name)} holds an invalid character`;
  }
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
  if (name === 'te' && value.toLowerCase() !== 'trailers') return 'te other than "trailers"';
  if (badValue(value)) return `header ${name} holds CR, LF or NUL`;
  return null;
}

/** Why a trailer section (flat [name, value, …]) is malformed, or null: pseudo-headers are not allowed (§8.1). */
export function malformedTrailers(h: readonly string[]): string | null {
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) return `pseudo-header ${name} in trailers`;
    const e = regularFieldError(name, h[i + 1]!);
    if (e !== null) return e;
  }
  return null;
}

/** Why a response head is malformed (§8.3.2: `:status` is its only pseudo-header, first), or null. */
export function malformedResponse(h: readonly string[]): string | null {
  let regular = false;
  let status = false;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `pseudo-header ${name} after regular headers`;
      if (name !== ':status') return `pseudo-header ${name} in a response`;
      if (status) return 'repeated :status';
      status = true;
      continue;
    }
    regular = true;
    const e = regularFieldError(name, h[i + 1]!);
    if (e !== null) return e;
  }
  return null;
}

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A `:method` is a token; the other pseudo-headers hold no space or control character (they become an HTTP/1.1 request line and Host). */
function badPseudoValue(name: string, value: string): boolean {
  if (name === ':method') return !TOKEN.test(value);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Why a request head is malformed (RFC 9113 §8.2, §8.3.1), or null. Malformed requests are
 * refused with a stream error before any handler sees them — what node:http2 did for us, and
 * what keeps a smuggled Transfer-Encoding, an uppercase twin of a header, or CR/LF in a name or
 * a pseudo-header from reaching an HTTP/1.1 upstream.
 */
export function malformedRequest(h: readonly string[]): string | null {
  let regular = false;
  let method: string | undefined;
  let path: string | undefined;
  let scheme: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `pseudo-header ${name} after regular headers`;
      if (!REQUEST_PSEUDO.has(name)) return `unknown pseudo-header ${name}`;
      if ((name === ':method' && method !== undefined) || (name === ':path' && path !== undefined) || (name === ':scheme' && scheme !== undefined)) return `repeated ${name}`;
      if (badPseudoValue(name, value)) return `${name} holds a space, a control character or a delimiter`;
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':scheme') scheme = value;
      continue;
    }
    regular = true;
    const e = regularFieldError(name, value);
    if (e !== null) return e;
  }
  if (method === undefined) return 'no :method';
  if (method === 'CONNECT') return null;
  if (path === undefined || path === '') return 'no :path';
  if (scheme === undefined) return 'no :scheme';
  return null;
}
