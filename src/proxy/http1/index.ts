export { parseRequestHead, type RequestHead, type RequestHeadResult } from './request-head.js';
export { parseResponseHead, type ResponseHead, type ResponseHeadResult } from './response-head.js';
export {
  INCOMPLETE,
  type HeadResult,
  type HeadOk,
  type HeadError,
  type HeadIncomplete,
  type RequestHeadErrorCode,
  type ResponseHeadErrorCode,
} from './head-result.js';
export { ChunkedDecoder, encodeChunkHeader, lastChunkWithTrailers, CHUNK_END, LAST_CHUNK } from './chunked.js';
export { serializeRequestHead, serializeResponseHead, STATUS_TEXT } from './serialize.js';
