import { describe, expect, it } from 'vitest';
import { substituteString } from '../../../src/config/env.js';
import { errorsOf, load, yaml } from './helpers.js';

describe('substituteString', () => {
  const env = { PORT: '9000', EMPTY: '', HOST: 'db.local' };

  it('replaces ${NAME} and ${NAME:-default}', () => {
    expect(substituteString('${HOST}:${PORT}', env).value).toBe('db.local:9000');
    expect(substituteString('${MISSING:-8080}', env).value).toBe('8080');
    expect(substituteString('${EMPTY:-x}', env).value).toBe('x');
    expect(substituteString('${PORT:-1}', env).value).toBe('9000');
    expect(substituteString('${MISSING:-}', env).value).toBe('');
  });

  it('keeps $${ as a literal ${', () => {
    expect(substituteString('cost $${PORT} and ${PORT}', env).value).toBe('cost ${PORT} and 9000');
  });

  it('reports an unset variable and a malformed reference', () => {
    expect(substituteString('a ${NOPE}', env).problems).toEqual([{ index: 2, message: expect.stringContaining('environment variable NOPE is not set') }]);
    expect(substituteString('${1BAD}', env).problems[0]!.message).toContain("invalid variable reference '${1BAD}'");
  });

  it('leaves text without references alone', () => {
    expect(substituteString('plain $HOME', env)).toEqual({ value: 'plain $HOME', problems: [] });
  });
});

describe('substitution in a config file', () => {
  // In flow style (`{a: ${X}}`) YAML itself needs quotes around a reference; block style does not.
  it('numbers and booleans accept substituted strings', () => {
    const { snapshot } = load(
      yaml`
      app:
        id: \${APP_ID}
        port: \${APP_PORT}
      sidecar:
        port: \${HTTP_PORT:-3600}
        traffic: { interception: { enabled: "\${INTERCEPT}" } }
      concurrency: "\${WORKERS:-2}"
      `,
      { APP_ID: 'orders', APP_PORT: '8081', INTERCEPT: 'true' },
    );
    expect(snapshot.app).toEqual({ id: 'orders', port: 8081, address: '127.0.0.1', protocol: 'http' });
    expect(snapshot.sidecar.port).toBe(3600);
    expect(snapshot.sidecar.interception.enabled).toBe(true);
    expect(snapshot.concurrency).toBe(2);
  });

  it('a number string stays a string where the schema wants a string', () => {
    const { snapshot } = load('app: { id: "${ID}" }\n', { ID: '1234' });
    expect(snapshot.app.id).toBe('1234');
  });

  it('substitutes inside endpoint strings', () => {
    const { snapshot } = load(
      yaml`
      clusters:
        - name: app
          endpoints: ["127.0.0.1:\${APP_PORT:-8080}"]
      `,
    );
    expect(snapshot.endpoints.app!.endpoints[0]).toMatchObject({ address: '127.0.0.1', port: 8080 });
  });

  it('does not substitute keys', () => {
    expect(errorsOf('app: { "${X}": 1 }\n')).toEqual(["sidecar.yaml:1:8: app[\"${X}\"]: unknown key '${X}'"]);
  });

  it('an unset variable without default is an error at its file:line:col', () => {
    const text = yaml`
      app:
        id: orders
        port: \${APP_PORT}
      sidecar:
        adminAddress: "\${ADMIN_ADDR}"
      `;
    expect(errorsOf(text)).toEqual([
      'sidecar.yaml:3:9: environment variable APP_PORT is not set (use ${APP_PORT:-default} to give a default)',
      'sidecar.yaml:5:17: environment variable ADMIN_ADDR is not set (use ${ADMIN_ADDR:-default} to give a default)',
    ]);
  });

  it('points inside a plain scalar at the reference', () => {
    expect(errorsOf('accessLog:\n  path: /var/log/${DIR}/x.log\n')[0]).toMatch(/^sidecar\.yaml:2:18: environment variable DIR is not set/);
  });

  it('a substituted value is validated like a literal one', () => {
    expect(errorsOf('app: { port: "${P}" }\n', { P: 'http' })).toEqual(['sidecar.yaml:1:14: app.port: expected a port number 0-65535, got "http"']);
  });
});
