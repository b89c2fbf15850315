// The pieces of an API both Tyk formats share: listen path, target URL, domain and the static
// mTLS certificate list. A listen path or target mtlsgate cannot route is fatal: an API without
// them is no API, and importing it half would change who reaches what.
import { isAbsolute } from 'node:path';
import { certEntry } from './cert-ids.ts';
import { relocatedCertPath } from './cert-files.ts';
import type { ImportContext } from './context.ts';
import { FatalImportError, ptr } from './report.ts';

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function listenPath(value: string | undefined, file: string, pointer: string): string {
  if (value === undefined || value.trim() === '') throw new FatalImportError(file, pointer, 'the API has no listen path');
  const v = value.trim();
  if (v.includes('{'))
    throw new FatalImportError(file, pointer, `listen path ${JSON.stringify(v)} has a path parameter; mtlsgate listen paths are plain prefixes`);
  return v.startsWith('/') ? v : `/${v}`;
}

/**
 * The upstream: an http(s) URL as it is; Tyk's `h2c://` (HTTP/2 without TLS, how Tyk proxies
 * gRPC) becomes the same http:// URL with proxy.http2, mtlsgate's h2c; anything else is fatal.
 */
export function upstreamTarget(value: string | undefined, file: string, pointer: string): { target_url: string; http2?: true } {
  if (value === undefined || value === '') throw new FatalImportError(file, pointer, 'the API has no target URL');
  if (/^h2c:\/\/[^/]/i.test(value)) return { target_url: `http://${value.slice('h2c://'.length)}`, http2: true };
  if (!/^https?:\/\/[^/]/i.test(value)) {
    const why = value.startsWith('tyk://') ? 'a Tyk internal (looping) target' : 'not an http(s) or h2c URL';
    throw new FatalImportError(file, pointer, `target ${JSON.stringify(value)} is ${why}; mtlsgate proxies to http(s) upstreams only`);
  }
  return { target_url: value };
}

/** Tyk's custom domain; one with a port or a pattern cannot be matched on host name alone. */
export function domain(value: string | undefined, file: string, pointer: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!HOSTNAME.test(value))
    throw new FatalImportError(
      file,
      pointer,
      `domain ${JSON.stringify(value)} is not a plain host name (a port or a {pattern}); mtlsgate matches the Host header and SNI exactly`,
    );
  return value.toLowerCase();
}

/** Tyk certificate ids become sha256: pins, paths stay paths; anything else is reported. */
export function clientCertificates(ctx: ImportContext, list: unknown, file: string, pointer: string): string[] {
  const out: string[] = [];
  if (!Array.isArray(list)) return out;
  list.forEach((raw, i) => {
    if (typeof raw !== 'string' || raw === '') return;
    const e = certEntry(raw);
    if ('pin' in e) out.push(e.pin);
    else if ('path' in e) {
      if (isAbsolute(e.path)) {
        out.push(relocatedCertPath(ctx, e.path, file, ptr(pointer, i)));
        return;
      }
      out.push(e.path);
      if (!e.path.startsWith('/'))
        ctx.report.note(
          file,
          ptr(pointer, i),
          `certificate path ${JSON.stringify(e.path)} kept: mtlsgate resolves it relative to the API's YAML file, Tyk relative to its working directory`,
        );
    } else
      ctx.report.drop(
        file,
        ptr(pointer, i),
        `client certificate ${JSON.stringify(raw)} not converted: neither a Tyk certificate id (org id + SHA-256) nor a file path`,
      );
  });
  return out;
}
