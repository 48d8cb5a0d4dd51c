// nginx as the upstream (return 200) and as a reverse-proxy peer. Each instance gets its own
// temp dir holding nginx.conf, the pid file, error.log and the *_temp_path directories.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, start } from './procs.mjs';

export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';

/** ~100-byte response body served by the upstream. */
export const BODY = 'capa-runtime bench upstream: hello from nginx. This body is exactly one hundred bytes long.........\n';

function common(dir) {
  // master + 1 worker, foreground; the harness measures the whole process tree.
  // When run as root, keep workers as root so they can use the 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  return `${user}daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; multi_accept on; }
`;
}

function httpCommon(dir) {
  return `  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 65s;
  keepalive_requests 1000000;
`;
}

export function upstreamConf(dir, port) {
  return `${common(dir)}http {
${httpCommon(dir)}  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type text/plain;
      return 200 ${JSON.stringify(BODY)};
    }
  }
}
`;
}

export function proxyConf(dir, port, upstreamPort) {
  return `${common(dir)}http {
${httpCommon(dir)}  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Write the config into a fresh temp dir and start nginx pinned to `cpus`. */
export function startNginx(name, conf, { cpus }) {
  const dir = makeTempDir(`capa-bench-${name}-`);
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, conf(dir));
  const rec = start(name, NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath], { cpus });
  rec.tempDir = dir;
  return rec;
}
