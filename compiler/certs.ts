// Certificates named by the config: a PEM file path (relative to the YAML file naming it), inline
// PEM, or (for client_certificates) "sha256:<64 hex>". Each file is read and parsed once however
// often it is named; every problem is reported on the YAML node that names the certificate.
// Private key blocks found next to a certificate are dropped here: only the DER of CERTIFICATE
// blocks leaves this module.
import { X509Certificate } from 'node:crypto';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { MAX_KEY_BITS, readCertFacts, writtenBackAsIs } from '../cert/der.ts';
import { fingerprintOf, formatPin } from '../cert/fingerprint.ts';
import { containsPrivateKey } from '../cert/private-key.ts';
import { derToPem, isPem, MAX_CERT_FILE_BYTES, notExactlyOneCertificate, pemBlocks } from '../cert/read.ts';
import { oneLineName } from '../cert/subject.ts';
import type { Confinement } from './confine.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { quotedPath } from './excerpt.ts';
import { count } from '../common/count.ts';
import { checkRegularFile, readRegularFile } from '../common/regular-file.ts';

export interface CertInfo {
  /** Lowercase hex SHA-256 of the DER. */
  fingerprint: string;
  /**
   * The DER, kept only while something may still need it: a CA's PEM for the bundle, or the
   * subject for an expiry message. Dropped otherwise (100,000 key certificates are ~50 MB).
   */
  der: Buffer | null;
  isCa: boolean;
  /** keyUsage keyCertSign (see cert/der.ts): a certificate that is not a CA but signs certificates. */
  keyCertSign: boolean;
  notAfter: Date;
}

/** What one file or inline PEM holds, or why it cannot be used (`problem` follows the name it was given as). */
type PemContents =
  | { certs: CertInfo[]; privateKey: boolean }
  | { code: 'E_CERT_READ' | 'E_CERT_NOT_PEM' | 'E_CERT_PARSE' | 'E_CERT_KEY_SIZE' | 'E_PATH_OUTSIDE'; problem: string };

const DAY_MS = 86_400_000;

export function isInlinePem(entry: string): boolean {
  return isPem(entry);
}

function certFromDer(der: Buffer): CertInfo | { code: 'E_CERT_PARSE' | 'E_CERT_KEY_SIZE'; problem: string } {
  let facts = writtenBackAsIs(der) ? readCertFacts(der) : null;
  if (!facts) {
    // Not the common DER layout: let OpenSSL decide whether it is a certificate at all.
    let x: X509Certificate;
    try {
      x = new X509Certificate(der);
    } catch {
      return { code: 'E_CERT_PARSE', problem: 'holds a CERTIFICATE block whose content is not a valid X.509 certificate (truncated or corrupted base64?)' };
    }
    // The bundle indexes the SHA-256 of these bytes; the gateway sees OpenSSL's (x.raw).
    const inexact = notExactlyOneCertificate(der, x.raw);
    if (inexact) {
      const key = inexact.extraBytes && containsPrivateKey(inexact.extraBytes) ? ': a private key, which must never be in a certificate file' : '';
      return {
        code: 'E_CERT_PARSE',
        problem: `${inexact.problem}${key}; the gateway sees this certificate as sha256:${fingerprintOf(x.raw)}, which these bytes are not. Write the certificate alone: openssl x509 -in FILE -out FILE.pem`,
      };
    }
    facts = { notAfter: new Date(x.validTo), isCa: x.ca, keyCertSign: false, bigKeyBits: x.publicKey.asymmetricKeyDetails?.modulusLength ?? 0 };
  }
  // A CA's key is judged where it is trusted (E_CA_UNUSABLE, check-ca.ts); a leaf's here: a
  // client that holds it makes the gateway verify its handshake signature with it, every connection.
  if (!facts.isCa && facts.bigKeyBits > MAX_KEY_BITS)
    return {
      code: 'E_CERT_KEY_SIZE',
      problem: `has a public key of ${facts.bigKeyBits} bits, more than ${MAX_KEY_BITS}: verifying its every handshake costs the gateway too much (reissue it with a key of at most ${MAX_KEY_BITS} bits, or an EC key)`,
    };
  return { fingerprint: fingerprintOf(der), der, isCa: facts.isCa, keyCertSign: facts.keyCertSign, notAfter: facts.notAfter };
}

/** Parses PEM text (read as latin1: PEM is ASCII, and binary DER keeps its first byte). */
function parsePem(text: string): PemContents {
  const certs: CertInfo[] = [];
  const blocks = pemBlocks(text);
  for (const block of blocks) {
    if (block.label !== 'CERTIFICATE') continue;
    const c = certFromDer(block.der);
    if ('code' in c) return c;
    certs.push(c);
  }
  const privateKey = containsPrivateKey(text);
  const anyBlock = blocks.length > 0;
  if (certs.length === 0) {
    if (privateKey)
      return { code: 'E_CERT_NOT_PEM', problem: 'holds a private key but no certificate; give the public certificate (-----BEGIN CERTIFICATE-----)' };
    const hint =
      text.charCodeAt(0) === 0x30
        ? ' (it looks like binary DER: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)'
        : anyBlock
          ? ' (it has PEM blocks, none of them a CERTIFICATE)'
          : '';
    return { code: 'E_CERT_NOT_PEM', problem: `is not a PEM certificate${hint}` };
  }
  return { certs, privateKey };
}

// One read into a reused buffer: certificate files are small, and readFileSync's fstat and
// per-file allocation are a measurable share of reading 100,000 of them. Opened non-blocking
// (a named pipe would wait for a writer); a read that comes back empty or fills the buffer is
// where a pipe or a device shows, and only then is the file stat'ed (common/regular-file.ts).
const readBuffer = Buffer.allocUnsafe(64 * 1024);
function readSmallFile(path: string, flags: number = constants.O_RDONLY, opened?: (fd: number) => void): string {
  const fd = openSync(path, flags | (constants.O_NONBLOCK ?? 0));
  try {
    opened?.(fd);
    let n: number;
    try {
      n = readSync(fd, readBuffer, 0, readBuffer.length, 0);
    } catch (err) {
      checkRegularFile(fstatSync(fd), MAX_CERT_FILE_BYTES); // a pipe cannot be read at an offset (ESPIPE)
      throw err;
    }
    if (n > 0 && n < readBuffer.length) return readBuffer.toString('latin1', 0, n);
    checkRegularFile(fstatSync(fd), MAX_CERT_FILE_BYTES);
    if (n === 0) return '';
  } finally {
    closeSync(fd);
  }
  return readRegularFile(path, MAX_CERT_FILE_BYTES, flags & (constants.O_NOFOLLOW ?? 0)).toString('latin1');
}

/** (size, mtimeMs, ctimeMs, ino) of the file at `abs`, symlinks followed; null when it cannot be stat'ed. */
export function statWitness(abs: string): FileWitness {
  try {
    return witnessOfStats(statSync(abs));
  } catch {
    return null;
  }
}

/** A stat's witness fields. */
export function witnessOfStats(st: { size: number; mtimeMs: number; ctimeMs: number; ino: number }): Exclude<FileWitness, null> {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

/** Whether two witnesses of a file (neither null) say it is unchanged (the racy SHA-256 aside). */
export function sameWitness(a: Exclude<FileWitness, null>, b: Exclude<FileWitness, null>): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/** A file changed (content: mtime; anything, even with the mtime put back: ctime) within RACY_MS of `now`: racily clean. */
export function isRacy(w: Exclude<FileWitness, null>, now: number): boolean {
  return w.mtimeMs >= now - RACY_MS || w.ctimeMs >= now - RACY_MS;
}

/** One-line subject ("CN=alice, O=acme") for messages and the bundle; parses on demand (slow path). */
export function subjectOf(cert: CertInfo): string {
  if (!cert.der) return formatPin(cert.fingerprint);
  try {
    return oneLineName(new X509Certificate(cert.der).subject);
  } catch {
    return formatPin(cert.fingerprint);
  }
}

export function caPem(cert: CertInfo): string {
  return derToPem(cert.der!);
}

/**
 * What a certificate file was when it was read, for the compile cache (compiler/key-cache.ts):
 * stat taken BEFORE the read, so a write after it changes mtime and ctime; `sha256` of the bytes
 * read only when the mtime or ctime was within RACY_MS of the read ("racily clean", as git's
 * index), or null when the file could not be stat'ed (missing: it must still be missing). The
 * ctime is what catches a rewrite that puts the size and mtime back (`touch -d`, a tool restoring
 * mtimes): any write or utimes call sets it to the current time, and nothing sets it back.
 */
export type FileWitness = { size: number; mtimeMs: number; ctimeMs: number; ino: number; sha256?: string } | null;
/** A file modified this close to the moment it was read may change again with the same mtime. */
export const RACY_MS = 2000;

export function sha256Hex(bytes: string | Buffer, encoding: BufferEncoding = 'latin1'): string {
  return createHash('sha256')
    .update(typeof bytes === 'string' ? Buffer.from(bytes, encoding) : bytes)
    .digest('hex');
}

export class CertLoader {
  private files = new Map<string, PemContents>();
  /** resolvePath's directories: "<yaml dir>\0<directory part of the entry>" -> resolved. */
  private readonly dirs = new Map<string, string>();
  private readonly warnBefore: number;
  /** abs path -> witness, when the compile cache asked for them (`recordWitnesses`). */
  private witnesses: Map<string, FileWitness> | null = null;
  /**
   * What a scoped loader's loads touched: files by abs path, and every notAfter returned. The
   * live compile's record also takes `changesAt`: other instants a result changes at (a CRL's).
   */
  touched: { files: Set<string>; notAfters: number[]; changesAt?: number[] } | null = null;

  constructor(
    private readonly log: DiagnosticLog,
    /** The compile's clock: expiry here, a trusted CA's validity in check-ca.ts. */
    readonly now: Date,
    expiryWarningDays: number,
    private readonly confine?: Confinement,
  ) {
    this.warnBefore = now.getTime() + expiryWarningDays * DAY_MS;
  }

  /** Keeps a witness of every certificate file read from now on (the compile cache needs them). */
  recordWitnesses(): void {
    this.witnesses ??= new Map();
  }

  witnessOf(abs: string): FileWitness | undefined {
    return this.witnesses?.get(abs);
  }

  /**
   * A loader reporting into `log` that shares this one's file cache and witnesses, and records
   * what its loads touch (one key file's run in the compile cache).
   */
  scoped(log: DiagnosticLog): CertLoader {
    const scoped = new CertLoader(log, this.now, 0, this.confine);
    (scoped as unknown as { warnBefore: number }).warnBefore = this.warnBefore;
    scoped.files = this.files;
    scoped.witnesses = this.witnesses;
    scoped.touched = { files: new Set(), notAfters: [] };
    return scoped;
  }

  /**
   * Why the file at `abs` may not be read (it resolves, symlinks followed, outside the config
   * directory and no --allow-outside names it), or null when it may. Every file the compiler
   * reads for a config value asks this first: nothing outside can reach a diagnostic.
   */
  outside(abs: string): string | null {
    const where = this.confine?.check(abs);
    if (!where || where.inside) return null;
    return `resolves to ${quotedPath(where.real)}, outside the config directory: not read (allow it with --allow-outside PATH)`;
  }

  /**
   * The certificates of a file path or inline PEM, named at `site` by the YAML file `yamlPath`.
   * Reports read/format/expiry/private-key problems at `site`; returns null when unusable.
   */
  load(entry: string, site: Site, yamlAbsPath: string, opts: { checkExpiry?: boolean } = {}): CertInfo[] | null {
    let contents: PemContents;
    // How messages name the certificate; built only for a message (1,000,000 loads name none).
    let label: () => string;
    if (isInlinePem(entry)) {
      label = () => '(inline PEM)';
      contents = parsePem(entry);
    } else {
      const abs = this.resolvePath(dirname(yamlAbsPath), entry);
      label = () => quotedPath(entry);
      this.touched?.files.add(abs);
      let cached = this.files.get(abs) ?? this.readInside(abs);
      const outside = cached ? null : this.outside(abs);
      if (outside !== null) {
        cached = { code: 'E_PATH_OUTSIDE', problem: outside };
        this.witnesses?.set(abs, statWitness(abs));
        this.files.set(abs, cached);
      } else if (!cached) {
        try {
          if (this.witnesses) {
            const witness = statWitness(abs);
            this.witnesses.set(abs, witness);
            const text = readSmallFile(abs);
            if (witness && isRacy(witness, Date.now())) witness.sha256 = sha256Hex(text);
            cached = parsePem(text);
          } else cached = parsePem(readSmallFile(abs));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const why =
            code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
          cached = { code: 'E_CERT_READ', problem: `cannot be read (resolved to ${quotedPath(abs)}): ${why}` };
        }
        this.dropUnneededDer(cached);
        this.files.set(abs, cached);
      }
      contents = cached;
    }
    if ('code' in contents) {
      this.log.report(contents.code, site, `certificate ${label()} ${contents.problem}`);
      return null;
    }
    if (contents.privateKey) {
      this.log.report(
        'W_CERT_PRIVATE_KEY',
        site,
        `${label()} also holds a PRIVATE KEY: it was dropped and is not in the bundle; remove it from the file and from version control (treat it as leaked)`,
      );
    }
    if (this.touched) for (const cert of contents.certs) this.touched.notAfters.push(cert.notAfter.getTime());
    if (opts.checkExpiry !== false) for (const cert of contents.certs) this.checkExpiry(cert, site, label);
    return contents.certs;
  }

  /**
   * resolve(dir, entry), for less: a key file names 1,000 certificates in one directory
   * ("../certs/000/key-000123.pem"), so the directory part is resolved once and the name
   * appended. Names that path.resolve would change ("", ".", "..") take path.resolve.
   */
  private resolvePath(dir: string, entry: string): string {
    const slash = entry.lastIndexOf('/');
    const name = entry.slice(slash + 1);
    if (sep !== '/' || name === '' || name === '.' || name === '..') return resolve(dir, entry);
    const part = slash === -1 ? '' : slash === 0 ? '/' : entry.slice(0, slash);
    const key = `${dir}\0${part}`;
    let base = this.dirs.get(key);
    if (base === undefined) this.dirs.set(key, (base = resolve(dir, part)));
    return base.endsWith('/') ? base + name : `${base}/${name}`;
  }

  /**
   * The contents of a file that is inside the config directory and not a symlink, read without
   * the lstat `outside` costs (confine.ts `insideUnlessLink`; O_NOFOLLOW refuses a symlink); or
   * undefined, and `load` takes its usual way (check, read, report) for this file.
   */
  private readInside(abs: string): PemContents | undefined {
    if (!this.confine?.insideUnlessLink(abs)) return undefined;
    let text: string;
    // The compile cache's witness: fstat of the file opened (not a symlink: O_NOFOLLOW), before the read.
    const seen: { witness?: Exclude<FileWitness, null> } = {};
    const opened = this.witnesses
      ? (fd: number) => {
          const st = fstatSync(fd);
          seen.witness = witnessOfStats(st);
        }
      : undefined;
    try {
      text = readSmallFile(abs, constants.O_RDONLY | constants.O_NOFOLLOW, opened);
    } catch {
      return undefined;
    }
    const w = seen.witness;
    if (this.witnesses && w) {
      if (isRacy(w, Date.now())) w.sha256 = sha256Hex(text);
      this.witnesses.set(abs, w);
    }
    const contents = parsePem(text);
    this.dropUnneededDer(contents);
    this.files.set(abs, contents);
    return contents;
  }

  private dropUnneededDer(contents: PemContents): void {
    if ('code' in contents) return;
    for (const cert of contents.certs) if (!cert.isCa && cert.notAfter.getTime() > this.warnBefore) cert.der = null;
  }

  private checkExpiry(cert: CertInfo, site: Site, label: () => string): void {
    const t = cert.notAfter.getTime();
    if (t <= this.now.getTime()) {
      this.log.report('E_CERT_EXPIRED', site, `certificate ${label()} (${subjectOf(cert)}) expired on ${cert.notAfter.toISOString()}`);
    } else if (t <= this.warnBefore) {
      const days = Math.floor((t - this.now.getTime()) / DAY_MS);
      this.log.report(
        'W_CERT_EXPIRING',
        site,
        `certificate ${label()} (${subjectOf(cert)}) expires on ${cert.notAfter.toISOString()}, in ${count(days, 'day')}`,
      );
    }
  }
}
