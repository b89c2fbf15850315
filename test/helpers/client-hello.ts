// The first bytes a real TLS client (node:tls) sends: its whole ClientHello record, captured by
// a plain TCP server on loopback, for tests that parse it or replay it to the gateway.
import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';

/** A ClientHello offering `servername` as SNI (none when undefined). */
export async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  const received = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          socket.destroy();
          resolve(buf);
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, rejectUnauthorized: false });
  client.on('error', () => undefined);
  const bytes = await received;
  client.destroy();
  server.close();
  return bytes;
}
