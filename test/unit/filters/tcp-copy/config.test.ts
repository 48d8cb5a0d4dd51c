import { describe, expect, it } from 'vitest';
import { parseTcpCopyConfig } from '../../../../src/filters/tcp-copy/index.js';

describe('tcp-copy config', () => {
  it('has Layotto-like defaults and reads YAML sizes', () => {
    expect(parseTcpCopyConfig(undefined)).toEqual({
      enabled: false,
      sampleRate: 0.01,
      maxPerSecond: 10,
      maxBytesPerConnection: 1024 * 1024,
      diskBudget: 100 * 1024 * 1024,
      maxFileSize: 10 * 1024 * 1024,
      directory: '/tmp/capa-tcpcopy',
      ports: [],
    });
    const c = parseTcpCopyConfig({ enabled: true, sampleRate: 1, maxBytesPerConnection: '64KiB', diskBudget: 5_000_000, maxFileSize: '1MiB', ports: [8080, 9090] });
    expect(c.maxBytesPerConnection).toBe(65536);
    expect(c.diskBudget).toBe(5_000_000);
    expect(c.maxFileSize).toBe(1024 * 1024);
    expect(c.ports).toEqual([8080, 9090]);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names the field and the reason when the config is wrong', () => {
    expect(() => parseTcpCopyConfig({ sampleRate: 2 })).toThrow(/^tcpCopy\.sampleRate: expected a probability from 0 to 1$/);
    expect(() => parseTcpCopyConfig({ maxPerSecond: 0.5 })).toThrow(/tcpCopy\.maxPerSecond: expected a whole number/);
    expect(() => parseTcpCopyConfig({ maxBytesPerConnection: 'lots' })).toThrow(/tcpCopy\.maxBytesPerConnection: expected a size such as "64KiB".*got "lots"/);
    expect(() => parseTcpCopyConfig({ diskBudget: -1 })).toThrow(/tcpCopy\.diskBudget: expected a size/);
    expect(() => parseTcpCopyConfig({ maxFileSize: '1KiB' })).toThrow(/tcpCopy\.maxFileSize: expected at least 131072 bytes/);
    expect(() => parseTcpCopyConfig({ ports: [80, 70000] })).toThrow(/tcpCopy\.ports\.1: expected a port from 1 to 65535/);
    expect(() => parseTcpCopyConfig({ enabled: 'yes' })).toThrow(/tcpCopy\.enabled: /);
    expect(() => parseTcpCopyConfig({ sampelRate: 0.1 })).toThrow(/tcpCopy\.sampelRate: unknown key/);
    expect(() => parseTcpCopyConfig({ directory: '' }, 'filters.tcpCopy')).toThrow(/filters\.tcpCopy\.directory: expected a directory path/);
  });

  it('reports every problem at once', () => {
    let msg = '';
    try {
      parseTcpCopyConfig({ sampleRate: -1, maxBytesPerConnection: 'x' });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.split('\n')).toHaveLength(2);
  });
});
