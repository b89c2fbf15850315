// kind: test documents: each case becomes an AccessCase (request, expectation, position), with
// its client certificate read from the file it names. The compiler does not decide requests (it
// never imports the runtime): the caller injects the runner (the CLI passes access/, which runs
// the gateway's own stages on the bundle), and each failing case becomes an E_ACCESS_TEST error
// at the case. Tests are never part of the bundle.
import { readRegularFile } from '../common/regular-file.ts';
import { dirname, resolve } from 'node:path';
import type { DiagnosticLog } from './diagnostics.ts';
import { MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { quotedPath } from './excerpt.ts';
import type { TestDoc, TestExpectSpec } from './model.ts';
import { locate, positionOf } from './source.ts';

export interface AccessCase {
  /** The test document's id. */
  suite: string;
  /** The case's name, or "METHOD URL". */
  name: string;
  /** Position of the case (its list item) in the config directory. */
  file: string;
  line: number;
  col: number;
  request: {
    method: string;
    url: string;
    /** PEM of the presented certificate (leaf first, then the chain it sends), or null. */
    certificatePem: string | null;
    asKey: string | null;
    token: string | null;
    headers: Record<string, string>;
    /** ISO time to decide at, or null for now. */
    at: string | null;
  };
  expect: TestExpectSpec;
}

/** What the gateway's stages answered, and whether it is what the case expects. */
export interface AccessOutcome {
  pass: boolean;
  actual: { status: number; code: string | null; key: string | null; api: string | null };
  /** Why the case could not be decided (an as_key that names no key with a token), or null. */
  problem: string | null;
}

/** Decides every case against the serialised bundle (synchronous: no network, no limiter). */
export type AccessTestRunner = (bundle: Buffer, cases: readonly AccessCase[]) => AccessOutcome[];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/;

/**
 * `outside(abs)`: why a certificate file may not be read (it resolves outside the config
 * directory, compiler/confine.ts), or null.
 */
export function resolveTests(docs: TestDoc[], log: DiagnosticLog, outside: (abs: string) => string | null = () => null): AccessCase[] {
  const out: AccessCase[] = [];
  const seen = new Set<string>();
  for (const { doc, spec } of docs) {
    if (seen.has(spec.id)) {
      log.report('E_DUPLICATE_ID', { file: doc.file, offset: locate(doc.root, ['id']) }, `two tests share the id "${spec.id}"`);
      continue;
    }
    seen.add(spec.id);
    spec.cases.forEach((c, i) => {
      const { line, col } = positionOf(doc.file, locate(doc.root, ['cases', i]));
      if (c.request.as_key !== undefined && c.request.token !== undefined) {
        log.report(
          'E_FIELD_VALUE',
          { file: doc.file, offset: locate(doc.root, ['cases', i, 'request', 'token'], true) },
          'give as_key or token, not both: a request bears one token',
        );
        return;
      }
      let pem: string | null = null;
      const cert = c.request.certificate;
      if (cert !== undefined) {
        const site = { file: doc.file, offset: locate(doc.root, ['cases', i, 'request', 'certificate']) };
        if (cert.includes('-----BEGIN ')) pem = cert;
        else {
          const abs = resolve(dirname(doc.file.absPath), cert);
          const refused = outside(abs);
          if (refused !== null) {
            log.report('E_PATH_OUTSIDE', site, `certificate ${quotedPath(cert)} ${refused}`);
            return;
          }
          try {
            pem = readRegularFile(abs, MAX_CERT_FILE_BYTES).toString('latin1');
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            log.report(
              'E_CERT_READ',
              site,
              `certificate ${quotedPath(cert)} cannot be read (resolved to ${quotedPath(abs)}): ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`,
            );
            return;
          }
        }
        if (!PEM_CERT.test(pem)) {
          log.report('E_CERT_NOT_PEM', site, `certificate ${cert.includes('-----BEGIN ') ? '(inline PEM)' : cert} holds no -----BEGIN CERTIFICATE----- block`);
          return;
        }
      }
      const method = (c.request.method ?? 'GET').toUpperCase();
      out.push({
        suite: spec.id,
        name: c.name ?? `${method} ${c.request.url}`,
        file: doc.file.path,
        line,
        col,
        request: {
          method,
          url: c.request.url,
          certificatePem: pem,
          asKey: c.request.as_key ?? null,
          token: c.request.token ?? null,
          headers: Object.fromEntries(Object.entries(c.request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
          at: c.request.at ?? null,
        },
        expect: c.expect,
      });
    });
  }
  return out;
}

const show = (v: unknown) => (v === null ? 'none' : String(v));

/** "expected status 403, code mtls.cert_not_allowed; got status 200 (api reports, key none)" */
export function describeFailure(c: AccessCase, o: AccessOutcome): string {
  const head = `test "${c.suite}" case "${c.name}"`;
  if (o.problem !== null) return `${head}: ${o.problem}`;
  const fields = (['status', 'code', 'key', 'api'] as const).filter((f) => c.expect[f] !== undefined);
  const expected = fields.map((f) => `${f} ${show(c.expect[f])}`).join(', ');
  const a = o.actual;
  return `${head}: expected ${expected}; got status ${a.status}, code ${show(a.code)}, key ${show(a.key)}, api ${show(a.api)}`;
}

/** Reports each failing case as E_ACCESS_TEST at the case. */
export function reportOutcomes(cases: readonly AccessCase[], outcomes: readonly AccessOutcome[], log: DiagnosticLog): void {
  cases.forEach((c, i) => {
    const o = outcomes[i];
    if (!o.pass) log.reportAt('E_ACCESS_TEST', c.file, c.line, c.col, describeFailure(c, o));
  });
}
