// One HTTP/1.1 GET over a raw TLS 1.2 connection, offering a session to resume: what a client
// that resumes sends (no certificate chain), to test what the gateway remembers across it.
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

export interface ResumableGet {
  status: number;
  session: Buffer | undefined;
  resumed: boolean;
}

/** GET `path` (host localhost) on 127.0.0.1:`port` with `options` (cert, key, ca), resuming `session` if given. */
export function getResumable(options: ConnectionOptions, port: number, path: string, session?: Buffer): Promise<ResumableGet> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ servername: 'localhost', maxVersion: 'TLSv1.2', ...options, host: '127.0.0.1', port, session }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('error', reject);
    socket.on('end', () => resolve({ status: Number(text.split(' ')[1]), session: socket.getSession(), resumed: socket.isSessionReused() }));
  });
}
