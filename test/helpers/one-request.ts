// One request to the gateway, as an attacker writes it: HTTP/1.1 byte for byte over TLS, or
// HTTP/2 with the pseudo-headers and header copies given, each on its own connection. The
// status and the body (a chunked body unwrapped).
import { connect } from 'node:http2';
import { rawTlsClient, type TestPki } from './gateway-fixtures.ts';

export interface OneAnswer {
  status: number;
  body: string;
}

/** `GET target` with `headerLines` ("Name: value\r\n" each) and Connection: close, HTTP/1.1 over TLS. */
export async function http1Once(pki: TestPki, port: number, target: string, headerLines: string): Promise<OneAnswer> {
  const c = await rawTlsClient(pki, port);
  c.socket.write(Buffer.from(`GET ${target} HTTP/1.1\r\n${headerLines}Connection: close\r\n\r\n`, 'latin1'));
  await c.whenClosed;
  const got = c.received();
  const head = got.slice(0, got.indexOf('\r\n\r\n'));
  let body = got.slice(head.length + 4);
  if (/transfer-encoding: chunked/i.test(head)) body = body.slice(body.indexOf('\r\n') + 2, body.lastIndexOf('\r\n0\r\n'));
  return { status: Number(head.slice(9, 12)), body };
}

/** One HTTP/2 request on a connection of its own (`servername`: the SNI, default localhost). */
export function http2Once(pki: TestPki, port: number, headers: Record<string, string | string[]>, servername = 'localhost'): Promise<OneAnswer> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://localhost:${port}`, { ca: pki.ca.certPem, servername });
    session.on('error', reject);
    const stream = session.request(headers);
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', reject);
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
  });
}

/** The `code` of a JSON body, if it has one. */
export function codeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { code?: string }).code;
  } catch {
    return undefined; // not JSON
  }
}
