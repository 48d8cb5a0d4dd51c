/**
 * Chunked transfer coding (RFC 9112 §7.1): a byte-level decoder for bodies read off a socket and
 * the pieces an encoder needs (with the last chunk's trailer section). The decoder never copies chunk data: `onData` gets subarrays
 * of the buffers pushed in. It stops right after the message's final CRLF, so pipelined bytes stay
 * with the caller.
 *
 * Strict like llhttp: hex sizes only (at most 15 digits, total body at most 2^53-1), CRLF after
 * the size line and after the data, extensions `;name[=token|quoted-string]` without whitespace
 * and at most 4 KiB per line, trailer fields validated like header fields and at most 16 KiB.
 */
import { HeaderMap } from '../headers.js';
import { HeaderBlock, scanHeaderBlock } from './header-block.js';
import { CR, LF, MAX_BODY, QDTEXT, TOKEN, describeByte } from './syntax.js';

export const CHUNK_END = '\r\n';
export const LAST_CHUNK = '0\r\n\r\n';

/**
 * The last chunk with a trailer section: `0\r\n`, a `name: value\r\n` line for each field
 * `keep` accepts, `\r\n`. Fields that are not valid HTTP/1.1 (a name that is not a token, CR,
 * LF or NUL in the value) are left out: trailers from HTTP/2 were checked already, this only
 * keeps anything else from splitting the message.
 */
export function lastChunkWithTrailers(trailers: HeaderMap, keep: (name: string) => boolean): string {
  const kv = trailers.kv;
  let out = '0\r\n';
  next: for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!;
    const value = kv[i + 1]!;
    if (name.length === 0 || !keep(name)) continue;
    for (let k = 0; k < name.length; k++) if (!(TOKEN[name.charCodeAt(k)]! > 0)) continue next;
    if (value.indexOf('\r') !== -1 || value.indexOf('\n') !== -1 || value.indexOf('\0') !== -1) continue;
    out += name + ': ' + value + '\r\n';
  }
  return out + '\r\n';
}

/** `${len in hex}\r\n`, the line that precedes `len` bytes of chunk data. */
export function encodeChunkHeader(len: number): string {
  return `${len.toString(16)}\r\n`;
}

const MAX_SIZE_DIGITS = 15;
const MAX_EXTENSION_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

const S_SIZE_FIRST = 0;
const S_SIZE = 1;
const S_EXT_NAME = 2;
const S_EXT_VALUE_FIRST = 3;
const S_EXT_VALUE_TOKEN = 4;
const S_EXT_QUOTED = 5;
const S_EXT_QUOTED_PAIR = 6;
const S_EXT_AFTER_QUOTED = 7;
const S_SIZE_LF = 8;
const S_DATA = 9;
const S_DATA_CR = 10;
const S_DATA_LF = 11;
const S_TRAILER_LINE_START = 12;
const S_TRAILER_LINE = 13;
const S_TRAILER_LF = 14;
const S_END_LF = 15;
const S_DONE = 16;
const S_ERROR = 17;

// === impl ChunkedDecoder ===

export class ChunkedDecoder {
  /** The last chunk and the trailer section have been read. */
  done = false;
  /** '' while fine; once set, `push` consumes nothing. */
  error = '';
  /** Trailer fields, when the message had any; null otherwise. */
  trailers: HeaderMap | null = null;

  private state = S_SIZE_FIRST;
  private size = 0;
  private digits = 0;
  private extBytes = 0;
  /** Chunk bytes still to deliver. */
  private remaining = 0;
  private total = 0;
  private trailerText = '';
  private readonly onData: (chunk: Buffer) => void;

  constructor(onData: (chunk: Buffer) => void) {
    this.onData = onData;
  }

  /** Consumes bytes of `buf` from `offset`; returns how many. Check `done` and `error` after. */
  push(buf: Buffer, offset: number): number {
    const len = buf.length;
    let i = offset;
    let state = this.state;
    if (state >= S_DONE) return 0;
    while (i < len) {
      if (state === S_DATA) {
        const n = Math.min(this.remaining, len - i);
        this.remaining -= n;
        if (this.remaining === 0) state = S_DATA_CR;
        this.state = state;
        this.onData(buf.subarray(i, i + n));
        i += n;
        continue;
      }
      const c = buf[i]!;
      switch (state) {
        case S_SIZE_FIRST:
        case S_SIZE: {
          const h = hexValue(c);
          if (h !== -1) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail(i, offset, 'chunk size has more than 15 hex digits');
            this.size = this.size * 16 + h;
            state = S_SIZE;
          } else if (state === S_SIZE_FIRST) {
            return this.fail(i, offset, `invalid character ${describeByte(c)} at the start of a chunk size`);
          } else if (c === CR) state = S_SIZE_LF;
          else if (c === 0x3b /* ; */) {
            this.extBytes = 0;
            state = S_EXT_NAME;
          } else return this.fail(i, offset, `invalid character ${describeByte(c)} in chunk size`);
          break;
        }
        case S_EXT_NAME:
          if (++this.extBytes > MAX_EXTENSION_BYTES) return this.fail(i, offset, 'chunk extensions longer than 4096 bytes');
          if (TOKEN[c]! > 0) break;
          if (c === 0x3d /* = */) state = S_EXT_VALUE_FIRST;
          else if (c === 0x3b) state = S_EXT_NAME;
          else if (c === CR) state = S_SIZE_LF;
          else return this.fail(i, offset, `invalid character ${describeByte(c)} in chunk extension name`);
          break;
        case S_EXT_VALUE_FIRST:
        case S_EXT_VALUE_TOKEN:
          if (++this.extBytes > MAX_EXTENSION_BYTES) return this.fail(i, offset, 'chunk extensions longer than 4096 bytes');
          if (TOKEN[c]! > 0) state = S_EXT_VALUE_TOKEN;
          else if (c === 0x22 /* " */ && state === S_EXT_VALUE_FIRST) state = S_EXT_QUOTED;
          else if (state === S_EXT_VALUE_TOKEN && c === 0x3b) state = S_EXT_NAME;
          else if (state === S_EXT_VALUE_TOKEN && c === CR) state = S_SIZE_LF;
          else return this.fail(i, offset, `invalid character ${describeByte(c)} in chunk extension value`);
          break;
        case S_EXT_QUOTED:
          if (++this.extBytes > MAX_EXTENSION_BYTES) return this.fail(i, offset, 'chunk extensions longer than 4096 bytes');
          if (c === 0x22) state = S_EXT_AFTER_QUOTED;
          else if (c === 0x5c /* \ */) state = S_EXT_QUOTED_PAIR;
          else if (QDTEXT[c] !== 1) return this.fail(i, offset, `invalid character ${describeByte(c)} in quoted chunk extension`);
          break;
        case S_EXT_QUOTED_PAIR:
          if (++this.extBytes > MAX_EXTENSION_BYTES) return this.fail(i, offset, 'chunk extensions longer than 4096 bytes');
          if (c < 32 ? c !== 9 : c === 127) return this.fail(i, offset, `invalid character ${describeByte(c)} in quoted chunk extension`);
          state = S_EXT_QUOTED;
          break;
        case S_EXT_AFTER_QUOTED:
          if (c === 0x3b) state = S_EXT_NAME;
          else if (c === CR) state = S_SIZE_LF;
          else return this.fail(i, offset, `invalid character ${describeByte(c)} after quoted chunk extension`);
          break;
        case S_SIZE_LF: {
          if (c !== LF) return this.fail(i, offset, 'chunk size line not ended by CRLF');
          const size = this.size;
          this.size = 0;
          this.digits = 0;
          this.total += size;
          if (this.total > MAX_BODY) return this.fail(i, offset, 'chunked body larger than 2^53-1 bytes');
          if (size === 0) state = S_TRAILER_LINE_START;
          else {
            this.remaining = size;
            state = S_DATA;
          }
          break;
        }
        case S_DATA_CR:
          if (c !== CR) return this.fail(i, offset, 'chunk data not followed by CRLF');
          state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== LF) return this.fail(i, offset, 'chunk data not followed by CRLF');
          state = S_SIZE_FIRST;
          break;
        case S_TRAILER_LINE_START:
          if (c === CR) {
            state = S_END_LF;
            break;
          }
          state = S_TRAILER_LINE;
          continue; // same byte, now as the first of a trailer line
        case S_TRAILER_LINE: {
          // Take the rest of the line in one piece.
          let j = i;
          while (j < len && buf[j] !== CR && buf[j] !== LF) j++;
          if (this.trailerText.length + (j - i) > MAX_TRAILER_BYTES) return this.fail(i, offset, 'trailer section larger than 16 KiB');
          this.trailerText += buf.toString('latin1', i, j);
          if (j === len) {
            i = j;
            continue;
          }
          if (buf[j] === LF) return this.fail(j, offset, 'bare LF in trailer section');
          i = j;
          state = S_TRAILER_LF;
          break;
        }
        case S_TRAILER_LF:
          if (c !== LF) return this.fail(i, offset, 'bare CR in trailer section');
          this.trailerText += '\r\n';
          state = S_TRAILER_LINE_START;
          break;
        case S_END_LF: {
          if (c !== LF) return this.fail(i, offset, 'last chunk not ended by CRLF');
          i++;
          this.state = S_DONE;
          this.done = true;
          if (this.trailerText !== '') {
            const hb = new HeaderBlock();
            const why = scanHeaderBlock(this.trailerText, 0, this.trailerText.length, hb, false);
            this.trailerText = '';
            if (why !== '') return this.fail(i, offset, `invalid trailer: ${why}`);
            this.trailers = new HeaderMap(hb.kv);
          }
          return i - offset;
        }
      }
      i++;
    }
    this.state = state;
    return i - offset;
  }

  private fail(at: number, offset: number, reason: string): number {
    this.state = S_ERROR;
    this.done = false;
    this.error = reason;
    return at - offset;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}
