// The two TLS servers the front hands sockets to (one asks for a client certificate, one does
// not: runtime/tls-front.ts says why), their certificates, and ALPN. They only do the TLS
// handshake: each secure socket then goes to the HTTP/1.1 or the HTTP/2 transport by the
// protocol ALPN chose, so one port serves both.
//
// Several server certificates (`--tls-cert`/`--tls-key` given more than once): the handshake
// serves the pair whose subjectAltName DNS names match the SNI (exact first, then a wildcard
// `*.example.com`, which covers one label as TLS clients match it), the first pair when none
// does or the client sends no SNI.
import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { createSecureContext, Server as TlsServer, type SecureContext, type TLSSocket, type TlsOptions } from 'node:tls';
import { certFacts, commonNames } from '../cert/cert-facts.ts';
import { handshakeCompleted } from './tls-front.ts';

export interface TlsPair {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * TLS 1.2 cipher suites: Mozilla's "intermediate" configuration (forward secrecy, AEAD only), in
 * its order. TLS 1.3 keeps its three suites (all modern). The DHE suites are listed as Mozilla
 * lists them; without a dhparam they are simply never chosen.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
];
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/**
 * TLS 1.2 is the floor; h2 is offered first, HTTP/1.1 for every client that does not speak it.
 * Client-initiated renegotiation (TLS 1.2) is refused outright: it costs the server a full
 * handshake whenever the client likes, and nothing here needs it.
 */
const BASE_OPTIONS: TlsOptions = {
  minVersion: 'TLSv1.2',
  ALPNProtocols: ['h2', 'http/1.1'],
  ciphers: [...TLS13_SUITES, ...TLS12_CIPHERS].join(':'),
  honorCipherOrder: true,
  secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
};

interface NamedContext {
  context: SecureContext;
  /** Lower-case DNS names: "api.example.com" or "*.example.com". */
  names: string[];
}

/**
 * DNS names of a server certificate (the first of a PEM chain): its DNS subjectAltNames, else its
 * CNs. Read from the DER by cert/ (Node's `subjectAltName` string quotes and escapes names that
 * hold ", " and cannot be split on it).
 */
export function serverNames(certPem: string | Buffer): string[] {
  const facts = certFacts(new X509Certificate(certPem).raw);
  return facts.sanDns.length > 0 ? facts.sanDns : commonNames(facts).map((cn) => cn.toLowerCase());
}

/** Does `name` (a certificate's DNS name, maybe "*.x.y") cover the SNI host? */
export function nameMatches(name: string, host: string): boolean {
  if (!name.startsWith('*.')) return name === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === name.slice(2);
}

function pick(contexts: readonly NamedContext[], servername: string): SecureContext {
  const host = servername.toLowerCase().replace(/\.$/, '');
  for (const c of contexts) if (c.names.includes(host)) return c.context;
  for (const c of contexts) for (const n of c.names) if (n.startsWith('*.') && nameMatches(n, host)) return c.context;
  return contexts[0].context;
}

export interface TlsServers {
  withCertificate: TlsServer;
  withoutCertificate: TlsServer;
  /** SIGHUP reload: new handshakes use these pairs (the first is the default). */
  setCredentials(pairs: readonly TlsPair[]): void;
}

/**
 * `onSecure` gets every socket whose handshake completed, with whether its server asked for
 * a client certificate.
 */
export function createTlsServers(pairs: readonly TlsPair[], onSecure: (socket: TLSSocket, askedForCertificate: boolean) => void): TlsServers {
  if (pairs.length === 0) throw new Error('at least one server certificate and key are needed');
  let contexts: NamedContext[] = [];
  const SNICallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => cb(null, pick(contexts, servername));
  const build = (ps: readonly TlsPair[]): NamedContext[] =>
    ps.map((p) => ({ context: createSecureContext({ ...BASE_OPTIONS, cert: p.cert, key: p.key }), names: serverNames(p.cert) }));
  contexts = build(pairs);
  const options = (requestCert: boolean): TlsOptions => ({
    ...BASE_OPTIONS,
    cert: pairs[0].cert,
    key: pairs[0].key,
    SNICallback,
    requestCert,
    rejectUnauthorized: false,
  });
  const withCertificate = new TlsServer(options(true));
  const withoutCertificate = new TlsServer(options(false));
  // The handshake is done: the front's deadline (accept to the end of the handshake) ends.
  for (const server of [withCertificate, withoutCertificate]) server.on('secureConnection', handshakeCompleted);
  withCertificate.on('secureConnection', (socket: TLSSocket) => onSecure(socket, true));
  withoutCertificate.on('secureConnection', (socket: TLSSocket) => onSecure(socket, false));
  // A handshake that fails (a client that gives up, a protocol it cannot speak) concerns that
  // client only.
  for (const server of [withCertificate, withoutCertificate]) server.on('tlsClientError', (_err, socket) => socket.destroy());
  return {
    withCertificate,
    withoutCertificate,
    setCredentials(ps) {
      if (ps.length === 0) return;
      const next = build(ps);
      contexts = next;
      for (const server of [withCertificate, withoutCertificate]) server.setSecureContext({ ...BASE_OPTIONS, cert: ps[0].cert, key: ps[0].key });
    },
  };
}
