// One request to the gateway, as an attacker writes it: HTTP/1.1 byte for byte over TLS, or
// HTTP/2 with the pseudo-headers and header copies given, each on its own connection (or on a
// session the test holds). The status and the body (a chunked body unwrapped), or read as the
// path and host tests compare it (echoAnswers).
import { type ClientHttp2Session, connect } from 'node:http2';
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
export async function http2Once(pki: TestPki, port: number, headers: Record<string, string | string[]>, servername = 'localhost'): Promise<OneAnswer> {
  const session = connect(`https://localhost:${port}`, { ca: pki.ca.certPem, servername });
  // Listened to until the end: a session error after the answer must not go uncaught.
  const failed = new Promise<never>((_, reject) => session.on('error', reject));
  try {
    return await Promise.race([http2On(session, headers), failed]);
  } finally {
    session.close();
  }
}

/**
 * One HTTP/2 request on an open session (node:http2 sends the values' characters as latin1
 * bytes). The session's own errors are the caller's to listen to.
 */
export function http2On(session: ClientHttp2Session, headers: Record<string, string | string[]>): Promise<OneAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', reject);
    stream.on('end', () => resolve({ status, body }));
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

/** What the echo upstream reports of a request it received (its JSON answer). */
export interface EchoView {
  path?: string;
  headers?: Record<string, string>;
}

/** One answer as the path and host tests compare it: the status, the refusal's code, and what the test reads of the echo's view. */
export type EchoAnswer<Seen> = { status: number; code?: string } & Seen;

/**
 * Requests to the gateway on `port`, each answer read into an EchoAnswer: `seen` takes what the
 * test compares from the echo upstream's view ({} when nothing was forwarded). HTTP/2 goes on
 * `session` when one is given, else on a connection of its own.
 */
export function echoAnswers<Seen>(pki: TestPki, port: number, seen: (echo: EchoView) => Seen, session?: ClientHttp2Session) {
  const read = (r: OneAnswer): EchoAnswer<Seen> => {
    const json = r.body === '' ? {} : (JSON.parse(r.body) as EchoView & { code?: string });
    return { status: r.status, code: json.code, ...seen(json) };
  };
  return {
    /** `GET target` written byte for byte over TLS, HTTP/1.1 (`headerLines`: "Name: value\r\n" each, Host included). */
    h1: async (target: string, headerLines: string) => read(await http1Once(pki, port, target, headerLines)),
    /** One HTTP/2 request with these pseudo-headers and headers (`servername`: the SNI of its own connection). */
    h2: async (headers: Record<string, string>, servername?: string) =>
      read(await (session ? http2On(session, headers) : http2Once(pki, port, headers, servername))),
  };
}
