// A Tyk definition may name a certificate by absolute path on the Tyk host
// (`/etc/tyk/certs/partner-b.pem`). mtlsgate reads config files only inside the config
// directory (docs/security.md item 4), so such a path kept as it is always fails the closing
// check (E_PATH_OUTSIDE), and passing --allow-outside through would tie the imported config to
// the Tyk host's file system: CI and the gateway's machine do not have /etc/tyk. What a migrator
// wants is a config directory that stands alone, so the importer copies the certificate into
// OUT/certs/ (certificate blocks only: a private key in the same file is never copied) and names
// it by its new relative path. When the file cannot be read here (the import runs away from the
// Tyk host), the YAML still names the place inside OUT where the file belongs, and the report
// says what to copy there (or to pin instead): check then reports that one missing file.
//
// A definition is input, perhaps from elsewhere (an export handed over for migration): it may
// name any path on the importing machine (/etc/shadow, ~/.ssh/id_ed25519). So a path is read
// only when it lies inside the directories of the inputs or under `--allow-outside PATH` (as
// the compiler's confinement, compiler/confine.ts); any other one is not looked at (no stat, no
// open), so the report reads the same whether such a file exists or not.
import { basename, resolve, sep } from 'node:path';
import { containsPrivateKey } from '../cert/private-key.ts';
import { Confinement, realOrSelf } from '../compiler/confine.ts';
import { MAX_CERT_FILE_BYTES } from '../cert/read.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFile } from '../common/regular-file.ts';
import type { ImportContext } from './context.ts';
import type { OutFile } from './yaml-out.ts';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Absolute certificate paths met so far: source path -> its file under OUT/certs/ (or null: not readable). */
export class CertCopies {
  private readonly byPath = new Map<string, { name: string; text: string | null }>();
  private readonly names = new Set<string>();

  /** The file under certs/ for `abs` (one name per source path; a second file of the same name gets -2, -3, ...). */
  name(abs: string): { name: string; text: string | null; first: boolean } {
    const known = this.byPath.get(abs);
    if (known) return { ...known, first: false };
    const base = basename(abs).replace(/[^A-Za-z0-9._-]/g, '_') || 'certificate.pem';
    const dot = base.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, '.pem'];
    let name = `${stem}${ext}`;
    for (let i = 2; this.names.has(name); i++) name = `${stem}-${i}${ext}`;
    this.names.add(name);
    const entry = { name, text: null as string | null };
    this.byPath.set(abs, entry);
    return { ...entry, first: true };
  }

  set(abs: string, text: string): void {
    this.byPath.get(abs)!.text = text;
  }

  files(): OutFile[] {
    return [...this.byPath.values()].filter((e) => e.text !== null).map((e) => ({ path: `certs/${e.name}`, text: e.text! }));
  }
}

/** Where certificate files named by a definition may be read: the inputs' directories and --allow-outside paths. */
export class CertReadRoots {
  private readonly lexical: string[];
  private readonly confine: Confinement;

  constructor(inputDirs: readonly string[], allowOutside: readonly string[]) {
    const roots = [...inputDirs, ...allowOutside].map((p) => resolve(p));
    this.confine = new Confinement(roots[0] ?? '/nonexistent', roots.slice(1));
    // As given and as their symlinks resolve (a /tmp input is /private/tmp on macOS).
    this.lexical = [...roots, ...roots.map(realOrSelf)];
  }

  /**
   * Whether `abs` may be read: first by its text alone (a path outside every root is refused
   * without a system call), then after symlinks (a link inside an input that points out).
   */
  allows(abs: string): boolean {
    const path = resolve(abs);
    if (!this.lexical.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep))) return false;
    return this.confine.check(path).inside;
  }
}

/**
 * The path to write for the certificate file `abs` named at `file#pointer`: `../certs/NAME` (the
 * YAML files sit one directory below OUT), with the copy made and reported, or the missing file
 * reported (once per source path).
 */
export function relocatedCertPath(ctx: ImportContext, abs: string, file: string, pointer: string): string {
  const entry = ctx.certCopies.name(abs);
  const relative = `../certs/${entry.name}`;
  if (!entry.first) return relative;
  if (!ctx.certReadRoots.allows(abs)) {
    ctx.report.drop(
      file,
      pointer,
      missing(
        abs,
        entry.name,
        `outside the Tyk inputs: a definition can name any path, so a file outside the input directories is read only when --allow-outside names it or a directory above it; this one was not looked at`,
      ),
    );
    return relative;
  }
  let pem: string;
  try {
    pem = readRegularFile(abs, MAX_CERT_FILE_BYTES).toString('latin1');
  } catch (err) {
    ctx.report.drop(file, pointer, missing(abs, entry.name, `${errnoMessage(err)} on this machine`));
    return relative;
  }
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    ctx.report.drop(file, pointer, missing(abs, entry.name, 'it holds no PEM certificate'));
    return relative;
  }
  ctx.certCopies.set(abs, `${blocks.join('\n')}\n`);
  ctx.certMaterial.addCopied(`certs/${entry.name}`, `${blocks.join('\n')}\n`);
  const key = containsPrivateKey(pem) ? '; the private key in that file was NOT copied' : '';
  ctx.report.note(
    file,
    pointer,
    `certificate file ${JSON.stringify(abs)} copied to certs/${entry.name} and named as ${JSON.stringify(relative)}: mtlsgate reads only files inside the config directory${key}`,
  );
  return relative;
}

function missing(abs: string, name: string, why: string): string {
  return (
    `certificate file ${JSON.stringify(abs)} not copied (${why}): mtlsgate reads only files inside the config directory, ` +
    `so the YAML names "../certs/${name}"; copy the certificate from the Tyk host to certs/${name} in the output directory, ` +
    `or replace the entry with its pin (sha256:..., \`mtlsgate fingerprint FILE\`). Until then check reports it missing`
  );
}
