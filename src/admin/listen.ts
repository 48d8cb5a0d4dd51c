/** Start a node:http server on host:port (0 = any free port) and close it, connections included. */
import type { Server } from 'node:http';
import type { ListeningServer } from './types.js';

export function listen(server: Server, host: string, port: number): Promise<ListeningServer> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      const actual = typeof addr === 'object' && addr ? addr.port : port;
      let closing: Promise<void> | null = null;
      resolve({
        port: actual,
        close: () =>
          (closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          })),
      });
    });
  });
}
