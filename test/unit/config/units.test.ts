import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { durationMs, parseDuration, parseSize, sizeBytes, tryParseDuration } from '../../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['0s', 0],
    ['0', 0],
    ['1m30s', 90_000],
    ['0.0005s', 1],
    [' 2s ', 2000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', '10 s', 's', '-1s', '1d', '1.2.3s', 'abc', '5x'])('rejects %j', (text) => {
    expect(tryParseDuration(text)).toBeUndefined();
    expect(() => parseDuration(text)).toThrow('expected a duration such as "250ms" or "10s"');
  });
});

describe('parseSize', () => {
  it.each<[string | number, number]>([
    ['64KiB', 65_536],
    ['1MiB', 1_048_576],
    ['60KiB', 61_440],
    [1024, 1024],
    ['1024', 1024],
    ['1.5KiB', 1536],
    ['2k', 2048],
    ['1GiB', 1024 ** 3],
    ['100kB', 100_000],
    ['10B', 10],
  ])('%j → %d bytes', (v, bytes) => {
    expect(parseSize(v)).toBe(bytes);
  });

  it.each<string | number>(['', 'KiB', '-1', '1TiB', '1 parsec', -5, 1.5])('rejects %j', (v) => {
    expect(() => parseSize(v)).toThrow('expected a size');
  });
});

describe('zod unit schemas', () => {
  it('durationMs converts and explains', () => {
    expect(durationMs.parse('1.5s')).toBe(1500);
    const r = z.object({ t: durationMs }).safeParse({ t: 5 });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toBe('expected a duration such as "250ms" or "10s", got 5');
    expect(r.error!.issues[0]!.path).toEqual(['t']);
  });

  it('sizeBytes converts and explains', () => {
    expect(sizeBytes.parse('64KiB')).toBe(65_536);
    expect(sizeBytes.parse(10)).toBe(10);
    expect(sizeBytes.safeParse('lots').error!.issues[0]!.message).toMatch(/^expected a size such as "64KiB"/);
  });
});
