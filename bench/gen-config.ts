// Generates the compile benchmark's config: N APIs and M keys, each key with its own client
// certificate file, as a platform team would keep them in git. Cached in bench/.work/ between
// runs (a marker file records the parameters).
//
// Issuing each certificate with cli/pki.ts takes ~7 ms (12 minutes for 100,000), so they are
// made from one template instead (~15 s for 100,000, file writes included): a leaf issued by
// cli/pki.ts is cut into its DER parts; for each key the serial, the subject CN (same length)
// and the public key (P-256 SPKI, always 91 bytes) are patched into the to-be-signed bytes,
// which the CA then signs with node:crypto (~30 µs). Public keys come from a pool of 1,000 real key pairs (key generation is
// ~200 µs each, and a public key's uniqueness does not matter to the compiler or the runtime);
// every certificate is distinct (serial, subject, signature), so every fingerprint is.
//
// Layout: apis/apis-NN.yaml (100 APIs a file), policies.yaml, keys/keys-NNN.yaml (1,000 keys a
// file), certs/NNN/key-NNNNNN.pem (1,000 a directory).
// Standalone: node --import tsx bench/gen-config.ts DIR [APIS] [KEYS]
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { createCa, issueCert } from '../cli/pki.ts';

export interface GenParams {
  apis: number;
  keys: number;
}

/** Bump when the generated layout changes: a cached config of another version is regenerated. */
const GENERATOR_VERSION = 2;
const KEYS_PER_FILE = 1000;
const APIS_PER_FILE = 100;
const POLICIES = 100;
const KEY_POOL = 1000;
/** One in ten APIs is static mTLS pinning a few key certificates by `sha256:`; the rest are dynamic mTLS. */
const STATIC_EVERY = 10;
const PINS_PER_STATIC_API = 10;

// ---- minimal DER helpers (definite lengths only, which is all X.509 DER uses) ----

function readTl(buf: Buffer, at: number): { tag: number; headerLen: number; len: number } {
  const tag = buf[at];
  const first = buf[at + 1];
  if (first < 0x80) return { tag, headerLen: 2, len: first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i];
  return { tag, headerLen: 2 + n, len };
}

function encodeTl(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  const bytes: number[] = [];
  for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

interface Template {
  tbs: Buffer;
  sigAlg: Buffer;
  serialAt: number;
  serialLen: number;
  cnAt: number;
  spkiAt: number;
  spkiLen: number;
}

const CN_WIDTH = 6;
const cnOf = (i: number) => `key-${String(i).padStart(CN_WIDTH, '0')}`;

function cutTemplate(der: Buffer, serialHex: string, cn: string, spki: Buffer): Template {
  const outer = readTl(der, 0);
  const tbsTl = readTl(der, outer.headerLen);
  const tbsEnd = outer.headerLen + tbsTl.headerLen + tbsTl.len;
  const tbs = der.subarray(outer.headerLen, tbsEnd);
  const algTl = readTl(der, tbsEnd);
  const sigAlg = der.subarray(tbsEnd, tbsEnd + algTl.headerLen + algTl.len);
  const serial = Buffer.from(serialHex.length % 2 ? '0' + serialHex : serialHex, 'hex');
  const serialAt = tbs.indexOf(serial);
  const cnAt = tbs.lastIndexOf(Buffer.from(cn));
  const spkiAt = tbs.indexOf(spki);
  if (serialAt < 0 || cnAt < 0 || spkiAt < 0) throw new Error('gen-config: could not locate serial, CN or public key in the template certificate');
  return { tbs: Buffer.from(tbs), sigAlg: Buffer.from(sigAlg), serialAt, serialLen: serial.length, cnAt, spkiAt, spkiLen: spki.length };
}

function makeCert(t: Template, i: number, spki: Buffer, caKey: KeyObject): string {
  const tbs = Buffer.from(t.tbs);
  const serial = randomBytes(t.serialLen);
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive, same length
  serial.copy(tbs, t.serialAt);
  tbs.write(cnOf(i), t.cnAt, 'latin1');
  spki.copy(tbs, t.spkiAt);
  const sig = sign('sha256', tbs, caKey);
  const bitString = Buffer.concat([encodeTl(0x03, sig.length + 1), Buffer.from([0]), sig]);
  const body = Buffer.concat([tbs, t.sigAlg, bitString]);
  const der = Buffer.concat([encodeTl(0x30, body.length), body]);
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

// ---- the config ----

const pad = (n: number, w: number) => String(n).padStart(w, '0');
const apiId = (a: number) => `api-${pad(a, 4)}`;
const isStatic = (a: number) => a % STATIC_EVERY === STATIC_EVERY - 1;

function apiDoc(a: number, pins: string[]): string {
  const lines = ['kind: api', `id: ${apiId(a)}`, 'proxy:', `  listen_path: /${apiId(a)}/`, `  target_url: http://127.0.0.1:${9000 + (a % 50)}`];
  if (isStatic(a)) lines.push('use_keyless: true', 'use_mutual_tls_auth: true', 'client_certificates:', ...pins.map((p) => `  - sha256:${p}`));
  else lines.push('use_keyless: false', 'auth:', '  use_certificate: true');
  return lines.join('\n');
}

function policiesYaml(apis: number): string {
  const dynamic = Array.from({ length: apis }, (_, a) => a).filter((a) => !isStatic(a));
  const docs: string[] = [];
  for (let p = 0; p < POLICIES; p++) {
    // Round-robin over the dynamic APIs; with fewer APIs than policies, policies share them.
    const granted = dynamic.length >= POLICIES ? dynamic.filter((_, i) => i % POLICIES === p) : [dynamic[p % dynamic.length]];
    const rights = granted.length ? granted.map((a) => `  ${apiId(a)}: {}`).join('\n') : '  {}';
    docs.push(
      `kind: policy\nid: policy-${pad(p, 3)}\naccess_rights:${granted.length ? '\n' + rights : ' {}'}\nrate: ${100 + p}\nper: 1\nquota_max: 100000\nquota_renewal_rate: 3600`,
    );
  }
  return docs.join('\n---\n') + '\n';
}

export interface GeneratedConfig {
  dir: string;
  params: GenParams;
  /** Seconds spent generating now (0 when the cached config was reused). */
  generatedInS: number;
}

export async function generateCompileConfig(dir: string, params: GenParams, log: (line: string) => void = () => {}): Promise<GeneratedConfig> {
  const marker = join(dir, '.generated.json');
  const stamp = JSON.stringify({ version: GENERATOR_VERSION, ...params });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === stamp) return { dir, params, generatedInS: 0 };
  const started = Date.now();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'apis'), { recursive: true });
  mkdirSync(join(dir, 'keys'), { recursive: true });

  const ca = await createCa('bench compile CA', { alg: 'ec' });
  mkdirSync(join(dir, 'certs'), { recursive: true });
  writeFileSync(join(dir, 'certs', 'ca.pem'), ca.certPem);
  const caKey = createPrivateKey(ca.keyPem);
  const template = await issueCert(ca, cnOf(0), { alg: 'ec' });
  const templateDer = Buffer.from(template.cert.rawData);
  const templateSpki = new X509Certificate(templateDer).publicKey.export({ type: 'spki', format: 'der' });
  const t = cutTemplate(templateDer, template.cert.serialNumber, cnOf(0), templateSpki);
  const pool = Array.from({ length: Math.min(KEY_POOL, params.keys) }, () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }),
  );
  if (pool.some((p) => p.length !== t.spkiLen)) throw new Error('gen-config: P-256 public keys of unexpected length');

  const fingerprints: string[] = [];
  for (let file = 0; file * KEYS_PER_FILE < params.keys; file++) {
    const shard = pad(file, 3);
    mkdirSync(join(dir, 'certs', shard), { recursive: true });
    const docs: string[] = [];
    for (let i = file * KEYS_PER_FILE; i < Math.min(params.keys, (file + 1) * KEYS_PER_FILE); i++) {
      const pem = makeCert(t, i, pool[i % pool.length], caKey);
      writeFileSync(join(dir, 'certs', shard, `${cnOf(i)}.pem`), pem);
      if (fingerprints.length < (params.apis / STATIC_EVERY) * PINS_PER_STATIC_API) fingerprints.push(fingerprintOf(new X509Certificate(pem).raw));
      docs.push(`kind: key\nid: ${cnOf(i)}\ncertificate: ../certs/${shard}/${cnOf(i)}.pem\napply_policies: [policy-${pad(i % POLICIES, 3)}]`);
    }
    writeFileSync(join(dir, 'keys', `keys-${shard}.yaml`), docs.join('\n---\n') + '\n');
    if (file % 20 === 19) log(`  gen-config: ${(file + 1) * KEYS_PER_FILE} certificates`);
  }
  for (let file = 0; file * APIS_PER_FILE < params.apis; file++) {
    const docs: string[] = [];
    for (let a = file * APIS_PER_FILE; a < Math.min(params.apis, (file + 1) * APIS_PER_FILE); a++) {
      const s = Math.floor(a / STATIC_EVERY) * PINS_PER_STATIC_API;
      docs.push(apiDoc(a, fingerprints.slice(s, s + PINS_PER_STATIC_API)));
    }
    writeFileSync(join(dir, 'apis', `apis-${pad(file, 2)}.yaml`), docs.join('\n---\n') + '\n');
  }
  writeFileSync(join(dir, 'policies.yaml'), policiesYaml(params.apis));
  writeFileSync(marker, stamp);
  return { dir, params, generatedInS: (Date.now() - started) / 1000 };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [dir, apis, keys] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node --import tsx bench/gen-config.ts DIR [APIS=1000] [KEYS=100000]');
    process.exit(2);
  }
  const r = await generateCompileConfig(dir, { apis: Number(apis ?? 1000), keys: Number(keys ?? 100000) }, (l) => console.error(l));
  console.log(`${r.dir}: ${r.params.apis} APIs, ${r.params.keys} keys${r.generatedInS ? ` generated in ${r.generatedInS.toFixed(1)} s` : ' (cached)'}`);
}
