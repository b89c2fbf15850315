// `proxy.upstream_tls`: how the gateway authenticates an https:// upstream (a CA, pinned leaf
// fingerprints, the name to check) and the client certificate it presents there. The bundle
// names the client certificate and key by path on this machine; they are read here, when a
// snapshot is built (start-up, every bundle reload, SIGHUP), so a rotated key file is picked up
// by the next reload and an unreadable one refuses that start-up or reload with the path named.
import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import type { UpstreamTls } from '../bundle/types.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { readRegularFile } from '../common/regular-file.ts';
import { MAX_TLS_FILE_BYTES } from '../common/size-limits.ts';

export interface UpstreamTlsSettings {
  readonly ca: string | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly servername: string | undefined;
  readonly pins: ReadonlySet<string>;
  /** Changes whenever any of the above does: a different pool for different settings. */
  readonly id: string;
}

class UpstreamTlsError extends Error {
  override name = 'UpstreamTlsError';
}

function readFor(apiId: string, what: string, path: string): Buffer {
  try {
    // Bounded, a regular file only: a named pipe here held the snapshot's build (start-up, or
    // the reload) with the event loop, and every request, waiting for a writer.
    return readRegularFile(path, MAX_TLS_FILE_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    // The path is the gateway's, not the config's: a relative one (as config paths usually are)
    // is read from serve's working directory, which is where the surprise is.
    const from = isAbsolute(path) ? '' : ` (a relative path is read from serve's working directory, ${process.cwd()}: give an absolute path)`;
    throw new UpstreamTlsError(`api ${apiId}: proxy.upstream_tls.${what} ${path} cannot be read: ${why}${from}`);
  }
}

/** Reads the client pair and fixes the settings; throws UpstreamTlsError naming what is wrong. */
export function loadUpstreamTls(apiId: string, tls: UpstreamTls): UpstreamTlsSettings {
  const cert = tls.client_certificate_file === null ? undefined : readFor(apiId, 'client_certificate', tls.client_certificate_file);
  const key = tls.client_key_file === null ? undefined : readFor(apiId, 'client_key_file', tls.client_key_file);
  if (cert !== undefined && key !== undefined) {
    try {
      // Refuse a mismatched or unparsable pair now rather than on the first request.
      createSecureContext({ cert, key });
    } catch (err) {
      throw new UpstreamTlsError(`api ${apiId}: proxy.upstream_tls client_certificate and client_key_file are not a usable pair: ${(err as Error).message}`);
    }
  }
  const id = createHash('sha256')
    .update(JSON.stringify([tls.ca_pem, tls.pinned_sha256, tls.server_name]))
    .update(cert ?? '')
    .update(key ?? '')
    .digest('hex')
    .slice(0, 16);
  return { ca: tls.ca_pem ?? undefined, cert, key, servername: tls.server_name ?? undefined, pins: new Set(tls.pinned_sha256), id };
}

/** The cause a request's record gives for an upstream whose leaf is not pinned. */
export const CERT_NOT_PINNED = 'CERT_NOT_PINNED';

/** The pinned-leaf check, once the TLS handshake with the upstream is done. */
export function checkPins(socket: TLSSocket, pins: ReadonlySet<string>): Error | null {
  if (pins.size === 0) return null;
  const peer = socket.getPeerX509Certificate();
  const fingerprint = peer === undefined ? '' : fingerprintOf(peer.raw);
  if (pins.has(fingerprint)) return null;
  // The code is what the request's record says (upstream_error, runtime/upstream-cause.ts).
  return Object.assign(new Error(`upstream certificate sha256:${fingerprint} is not in proxy.upstream_tls.pinned_sha256`), { code: CERT_NOT_PINNED });
}

/**
 * An undici connector for these settings. With a CA, the chain must verify (and match the
 * pins, if any); with pins and no CA, the pin alone authenticates the upstream (a
 * self-signed upstream); with neither, the system roots verify it.
 */
export function upstreamConnector(settings: UpstreamTlsSettings): buildConnector.connector {
  const base = buildConnector({
    ca: settings.ca,
    cert: settings.cert,
    key: settings.key,
    servername: settings.servername,
    rejectUnauthorized: !(settings.pins.size > 0 && settings.ca === undefined),
  });
  return (opts, cb) =>
    base(opts, (err, socket) => {
      if (err !== null) return cb(err, null);
      const pinError = checkPins(socket as TLSSocket, settings.pins);
      if (pinError !== null) {
        socket.destroy();
        return cb(pinError, null);
      }
      cb(null, socket);
    });
}
