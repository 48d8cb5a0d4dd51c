import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_LEVELS, setLogLevel } from '../../../src/observability/logger.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with level names and ISO time', () => {
    const c = capture();
    const log = createLogger('info', { destination: c.stream });
    log.info({ listener: 'virtualOutbound' }, 'started');
    log.debug('hidden');
    log.warn('second');
    const lines = c.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'started', listener: 'virtualOutbound', pid: process.pid });
    expect(String(lines[0]!.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(lines[1]).toMatchObject({ level: 'warn', msg: 'second' });
  });

  it('redacts authorization and cookie', () => {
    const c = capture();
    const log = createLogger('info', { destination: c.stream });
    log.info({ authorization: 'Bearer s3cret', cookie: 'sid=1', headers: { authorization: 'Basic x', cookie: 'a=b', host: 'h' }, req: { headers: { authorization: 'y' } } }, 'req');
    const text = JSON.stringify(c.lines());
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('sid=1');
    expect(text).not.toContain('Basic x');
    expect(text).not.toContain('"y"');
    expect(c.lines()[0]).toMatchObject({ authorization: '[redacted]', headers: { host: 'h', cookie: '[redacted]' } });
  });

  it('changes level at run time and rejects unknown levels', () => {
    const c = capture();
    const log = createLogger('warn', { destination: c.stream });
    log.info('no');
    expect(setLogLevel(log, 'debug')).toBe(true);
    log.debug('yes');
    expect(setLogLevel(log, 'verbose')).toBe(false);
    expect(log.level).toBe('debug');
    expect(c.lines().map((l) => l.msg)).toEqual(['yes']);
    expect(LOG_LEVELS).toContain('silent');
    expect(() => createLogger('loud')).toThrow(/allowed/);
  });
});
