/** The access-log filter: one stateless object shared by every request; writes at completion only. */
import type { StreamInfo } from '../../proxy/stream-info.js';
import type { HttpFilter, HttpStream } from '../types.js';
import type { AccessLogWriter } from './writer.js';

export class AccessLogFilter implements HttpFilter {
  constructor(
    private readonly writer: AccessLogWriter,
    private readonly format: (i: StreamInfo) => string,
  ) {}

  onComplete(s: HttpStream): void {
    this.writer.write(this.format(s.info));
  }
}
