// Starting and stopping a listening server, the one way every server here does it: listen
// resolves with the bound address (port 0 picks a free one) or rejects with the listen error
// (EADDRINUSE, EACCES, ...); close stops accepting and, for an HTTP server, cuts its open
// connections (idle keep-alive ones would otherwise hold the close for their timeout).
import { createServer, type AddressInfo, type Server } from 'node:net';

export function listen(server: Server, port: number, host?: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** A port the kernel just gave and took back, for a child process to listen on (the race with
 *  another taker is accepted: loopback, and a collision fails loudly at start). */
export async function freePort(): Promise<number> {
  const server = createServer();
  const { port } = await listen(server, 0, '127.0.0.1');
  await closeServer(server);
  return port;
}
