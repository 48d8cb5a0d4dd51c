/**
 * TLS ClientHello sniffing for capture listeners: recognise a TLS handshake from the first bytes
 * and read its SNI and ALPN (Envoy's tls_inspector), so the connection can be logged and passed
 * through as opaque TCP to its original destination. Only reads; never terminates TLS.
 */

export interface ClientHelloInfo {
  /** server_name extension (host_name), '' when absent. */
  readonly sni: string;
  /** application_layer_protocol_negotiation protocols, in the client's order. */
  readonly alpn: readonly string[];
}

/** A TLS record carrying a handshake: content type 22, version 3.x. */
export function looksLikeTls(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0x16 && b[1] === 0x03 && b[2]! <= 0x04;
}

const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/**
 * Parse the ClientHello in the first TLS record. 'incomplete' when more bytes are needed (the
 * record is longer than what arrived), null when it is not a well-formed ClientHello.
 */
export function parseClientHello(b: Buffer): ClientHelloInfo | 'incomplete' | null {
  if (!looksLikeTls(b)) return b.length < 3 ? 'incomplete' : null;
  if (b.length < 5) return 'incomplete';
  const recordLen = b.readUInt16BE(3);
  if (recordLen < 4 || recordLen > 16384 + 2048) return null;
  if (b.length < 5 + recordLen) return 'incomplete';
  const rec = b.subarray(5, 5 + recordLen);
  if (rec[0] !== 1) return null; // handshake type client_hello
  const hsLen = (rec[1]! << 16) | (rec[2]! << 8) | rec[3]!;
  // A ClientHello split over several records is legal but rare; read what the first one holds.
  const body = rec.subarray(4, Math.min(rec.length, 4 + hsLen));
  let p = 2 + 32; // client_version + random
  if (body.length < p + 1) return null;
  p += 1 + body[p]!; // session_id
  if (body.length < p + 2) return null;
  p += 2 + body.readUInt16BE(p); // cipher_suites
  if (body.length < p + 1) return null;
  p += 1 + body[p]!; // compression_methods
  if (body.length < p + 2) return { sni: '', alpn: [] }; // no extensions
  const extEnd = Math.min(body.length, p + 2 + body.readUInt16BE(p));
  p += 2;
  let sni = '';
  const alpn: string[] = [];
  while (p + 4 <= extEnd) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    const ext = body.subarray(p + 4, Math.min(extEnd, p + 4 + len));
    p += 4 + len;
    if (type === EXT_SERVER_NAME && ext.length >= 2) {
      let q = 2;
      const listEnd = Math.min(ext.length, 2 + ext.readUInt16BE(0));
      while (q + 3 <= listEnd) {
        const nameType = ext[q]!;
        const nameLen = ext.readUInt16BE(q + 1);
        if (nameType === 0 && q + 3 + nameLen <= listEnd) {
          sni = ext.toString('latin1', q + 3, q + 3 + nameLen);
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === EXT_ALPN && ext.length >= 2) {
      let q = 2;
      const listEnd = Math.min(ext.length, 2 + ext.readUInt16BE(0));
      while (q < listEnd) {
        const l = ext[q]!;
        if (q + 1 + l > listEnd) break;
        alpn.push(ext.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
  }
  return { sni, alpn };
}
