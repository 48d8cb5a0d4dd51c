/**
 * When an HTTP/2 field list is malformed (RFC 9113 §8.1.1, §8.2): request heads, response heads
 * and trailer sections. Either end answers a malformed list with a stream error (RST_STREAM
 * PROTOCOL_ERROR). HPACK carries any octets, so for a proxy this is also what keeps CR, LF, a
 * space or a colon in a name or value from being written into an HTTP/1.1 head or trailer section
 * on the next hop (request smuggling, response splitting).
 */

/** Fields RFC 9113 §8.2.2 forbids in HTTP/2 (connection-specific). */
export const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

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
