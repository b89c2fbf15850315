// Issue 16 item 10: the files in deploy/ cannot rot. Each is parsed, its references checked
// against the others (volumes, keys, ports, probes), and the exact `serve` command line it holds
// is run, through the built CLI, against the compiled examples laid out the way systemd and
// Kubernetes would see them (a ConfigMap is a ..data symlink swap), with the probes asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, posix, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { DemoPki } from '../cli/pki.ts';
import { CLI, ensureBuilt, mtlsgate, ROOT } from './helpers/cli.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { curl, demoPki } from './helpers/serve-fixtures.ts';

const DEPLOY = join(ROOT, 'deploy');
const t = tempDir('deploy');
let pki: DemoPki;
let bundle: Buffer;
let revoked: Buffer;
before(async () => {
  ensureBuilt();
  const config = join(t.dir, 'config');
  const examples = join(ROOT, 'examples');
  cpSync(examples, config, { recursive: true, filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(examples, src)) });
  pki = await demoPki(config);
  const out = join(t.dir, 'bundle.json');
  const r = mtlsgate(['compile', config, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  bundle = readFileSync(out);
  const logistics = join(config, 'apis', 'logistics.yaml');
  writeFileSync(logistics, readFileSync(logistics, 'utf8').replace('  - ../certs/partner-a.pem\n', ''));
  assert.equal(mtlsgate(['compile', config, '-o', out]).code, 0);
  revoked = readFileSync(out);
});
after(() => t.cleanup());

// biome-ignore lint/suspicious/noExplicitAny: parsed manifests are untyped; the test walks them by their documented shape
type Obj = Record<string, any>;
function manifests(): Obj[] {
  const dir = join(DEPLOY, 'kubernetes');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
        assert.deepEqual(d.errors, [], f);
        return d.toJS() as Obj;
      }),
    );
}
const find = (all: Obj[], kind: string, name?: string) => {
  const m = all.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  assert.ok(m, `deploy/kubernetes has a ${kind}${name ? ` named ${name}` : ''}`);
  return m;
};
const digestOf = (b: Buffer) => JSON.parse(b.toString()).digest as string;
/** The listen addresses from the files, on port 0: tests never take fixed ports. */
const anyPort = (hostPort: string) => hostPort.replace(/:\d+$/, ':0');

/** A mounted ConfigMap or Secret as the kubelet writes it: files behind the ..data symlink. */
function kubeletVolume(dir: string, files: Record<string, Buffer | string>, version = '..2026_01'): void {
  mkdirSync(join(dir, version), { recursive: true });
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, version, k), v);
  symlinkSync(version, join(dir, '..data'));
  for (const k of Object.keys(files)) symlinkSync(`..data/${k}`, join(dir, k));
}
function kubeletSwap(dir: string, files: Record<string, Buffer | string>, version: string): void {
  mkdirSync(join(dir, version));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, version, k), v);
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
}

/** Runs the CLI with exactly `args`, as a service manager would; resolves its log lines. */
function start(args: string[], cwd: string, env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MTLSGATE_')));
  const child = spawn(CLI, args, { cwd, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const lines = () =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Obj);
  const serving = () =>
    waitFor(
      'mtlsgate serving',
      () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stdout}${stderr}`);
        return lines().find((l) => l.msg === 'mtlsgate serving');
      },
      30_000,
    );
  return { child, exited, lines, serving, stderr: () => stderr };
}

test('Kubernetes: Deployment, ConfigMap, Secret and Service agree; the container command serves a ConfigMap bundle and follows its symlink swap', async () => {
  const all = manifests();
  const deployment = find(all, 'Deployment', 'mtlsgate');
  const pod = deployment.spec.template;
  assert.deepEqual(deployment.spec.selector.matchLabels, pod.metadata.labels);
  const [container] = pod.spec.containers;
  const args: string[] = container.args;
  assert.equal(args[0], 'serve');
  const flag = (name: string) => args[args.indexOf(name) + 1];
  const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, String(e.value)]));
  const port = (name: string) => (container.ports as Obj[]).find((p) => p.name === name)?.containerPort;

  // Ports: the Service targets the HTTPS listener, the probes the admin listener.
  const service = find(all, 'Service', 'mtlsgate');
  assert.deepEqual(service.spec.selector, pod.metadata.labels);
  assert.equal(port(service.spec.ports[0].targetPort), Number(env.MTLSGATE_LISTEN.split(':').pop()));
  for (const [probe, path] of [
    ['livenessProbe', '/live'],
    ['readinessProbe', '/ready'],
  ]) {
    assert.equal(container[probe].httpGet.path, path, probe);
    assert.equal(port(container[probe].httpGet.port), Number(env.MTLSGATE_ADMIN.split(':').pop()), `${probe} on the admin port`);
  }

  // Volumes: the bundle from the ConfigMap (mounted whole: a subPath would never see updates),
  // the certificate from the Secret; the file names are the keys the kubectl commands create.
  const mountOf = (file: string) => {
    const abs = posix.resolve(container.workingDir, file);
    const m = (container.volumeMounts as Obj[]).find((v) => abs.startsWith(`${v.mountPath}/`));
    assert.ok(m, `${file} is on a mounted volume`);
    assert.equal(m.subPath, undefined, 'no subPath');
    const volume = (pod.spec.volumes as Obj[]).find((v) => v.name === m.name);
    assert.ok(volume, `volume ${m.name} is declared`);
    return { mount: m, key: posix.relative(m.mountPath, abs), volume };
  };
  const b = mountOf(flag('--bundle'));
  const configMap = find(all, 'ConfigMap', b.volume.configMap.name);
  assert.ok(b.key in configMap.data, `ConfigMap ${configMap.metadata.name} holds ${b.key}`);
  const cert = mountOf(flag('--tls-cert'));
  const key = mountOf(flag('--tls-key'));
  const secret = find(all, 'Secret', cert.volume.secret.secretName);
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.deepEqual(Object.keys(secret.stringData).sort(), [cert.key, key.key].sort());

  // The image runs the CLI file with node.
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^ENTRYPOINT \["node", "\/opt\/mtlsgate\/mtlsgate\.mjs"\]$/m);
  assert.match(dockerfile, /^COPY dist\/mtlsgate\.mjs dist\/bundle-worker\.mjs dist\/crl-worker\.mjs \/opt\/mtlsgate\/$/m);

  // The pod's filesystem, as the kubelet lays it out, under a temporary root.
  const root = join(t.dir, 'k8s');
  kubeletVolume(join(root, b.mount.mountPath), { [b.key]: bundle });
  kubeletVolume(join(root, cert.mount.mountPath), { [cert.key]: pki.server.certPem, [key.key]: pki.server.keyPem });
  const s = start(args, join(root, container.workingDir), { MTLSGATE_LISTEN: anyPort(env.MTLSGATE_LISTEN), MTLSGATE_ADMIN: anyPort(env.MTLSGATE_ADMIN) });
  try {
    const up = await s.serving();
    assert.equal(up.digest, digestOf(bundle));
    const adminPort = String(up.admin).split(':').pop();
    const gatewayPort = String(up.listen).split(':').pop();
    for (const probe of ['/live', '/ready']) assert.equal((await fetch(`http://127.0.0.1:${adminPort}${probe}`)).status, 200, probe);
    const mallory = await curl(`https://127.0.0.1:${gatewayPort}/reports/daily`, pki, 'mallory');
    assert.equal(mallory.status, 403, mallory.body);
    // The one expected warning: the manifest puts the admin listener beyond loopback on
    // purpose (kubelet probes reach it; the Service does not expose it), and serve says so.
    assert.deepEqual(
      s
        .lines()
        .filter((l) => l.level === 'warn' || l.level === 40)
        .map((l) => l.msg),
      ['the admin listener (/health, /metrics: unauthenticated, plain HTTP) is not on a loopback address; keep it off untrusted networks'],
    );
    assert.equal(s.stderr(), '', 'no warning: every MTLSGATE_* variable of the manifest is known');

    kubeletSwap(join(root, b.mount.mountPath), { [b.key]: revoked }, '..2026_02');
    await waitFor('the swapped ConfigMap bundle', async () => {
      const h = (await (await fetch(`http://127.0.0.1:${adminPort}/health`)).json()) as { bundle: { digest: string } };
      return h.bundle.digest === digestOf(revoked);
    });
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('systemd: the unit ExecStart serves the bundle from its WorkingDirectory; ExecReload (SIGHUP) reloads; stop exits 0', async () => {
  const unit = readFileSync(join(DEPLOY, 'systemd', 'mtlsgate.service'), 'utf8');
  const entries = unit
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
  const one = (k: string) => {
    const v = entries.filter(([key]) => key === k);
    assert.equal(v.length, 1, `one ${k}=`);
    return v[0][1];
  };
  for (const section of ['[Unit]', '[Service]', '[Install]']) assert.ok(unit.includes(`\n${section}\n`) || unit.startsWith(section), section);
  const [exe, ...args] = one('ExecStart').split(/\s+/);
  assert.equal(basename(exe), 'mtlsgate');
  assert.equal(args[0], 'serve');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  const env = Object.fromEntries(entries.filter(([k]) => k === 'Environment').map(([, v]) => v.split('=') as [string, string]));
  const workDir = one('WorkingDirectory');

  const root = join(t.dir, 'systemd', workDir);
  const flag = (name: string) => join(root, args[args.indexOf(name) + 1]);
  mkdirSync(join(flag('--tls-cert'), '..'), { recursive: true });
  writeFileSync(flag('--bundle'), bundle);
  writeFileSync(flag('--tls-cert'), pki.server.certPem);
  writeFileSync(flag('--tls-key'), pki.server.keyPem, { mode: 0o600 });
  const s = start(args, root, { MTLSGATE_LISTEN: anyPort(env.MTLSGATE_LISTEN), MTLSGATE_ADMIN: anyPort(env.MTLSGATE_ADMIN) });
  try {
    const up = await s.serving();
    const adminPort = String(up.admin).split(':').pop();
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status, 200);
    assert.equal(s.stderr(), '');
    // The admin listener stays on loopback on a host: only local probes and scrapers see it.
    assert.match(env.MTLSGATE_ADMIN, /^127\.0\.0\.1:/);

    writeFileSync(flag('--bundle'), revoked);
    s.child.kill('SIGHUP');
    await waitFor('SIGHUP reload', async () => {
      const h = (await (await fetch(`http://127.0.0.1:${adminPort}/health`)).json()) as { bundle: { digest: string } };
      return h.bundle.digest === digestOf(revoked) && s.lines().some((l) => l.msg === 'server certificate reloaded');
    });
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('dist/mtlsgate.mjs is executable with a node #! line; LICENSE is the Apache-2.0 text package.json names', () => {
  const st = statSync(CLI);
  assert.equal(st.mode & 0o111, 0o111, 'executable by everyone');
  assert.match(readFileSync(CLI, 'utf8').slice(0, 40), /^#!\/usr\/bin\/env node\n/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.license, 'Apache-2.0');
  assert.equal(pkg.bin.mtlsgate, 'dist/mtlsgate.mjs');
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  assert.match(license, /^\s*Apache License\n\s*Version 2\.0, January 2004\n/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
});

test('the ConfigMap holds at most 1 MiB: the manifests and the quickstart say how many keys that is (measured here) and what to do past it', () => {
  // 5,000 keys as heavy as keys get in a bundle: a certificate pin and a token each.
  const config = join(t.dir, 'many-keys');
  mkdirSync(join(config, 'keys'), { recursive: true });
  writeFileSync(join(config, 'api.yaml'), 'kind: api\nid: a\nproxy:\n  listen_path: /a/\n  target_url: http://127.0.0.1:9\nauth:\n  use_certificate: true\n');
  writeFileSync(join(config, 'p.yaml'), 'kind: policy\nid: p\naccess_rights:\n  a: {}\nrate: 10\nper: 1\n');
  const hex = (s: string) => createHash('sha256').update(s).digest('hex');
  const keys = Array.from(
    { length: 5000 },
    (_, i) => `kind: key\nid: key-${i}\ncertificate: sha256:${hex(`c${i}`)}\ntoken_sha256: ${hex(`t${i}`)}\napply_policies: [p]\n`,
  );
  writeFileSync(join(config, 'keys', 'k.yaml'), keys.join('---\n'));
  const out = join(t.dir, 'many-keys.json');
  assert.equal(mtlsgate(['compile', config, '-o', out]).code, 0);
  const perKey = statSync(out).size / 5000;
  const fitting = Math.floor((1024 * 1024) / perKey);
  assert.ok(fitting >= 6000 && fitting < 10_000, `a 1 MiB ConfigMap holds ${fitting} such keys (${perKey.toFixed(0)} B a key)`);
  // What the files say: the cap, the lower bound just measured, and the way out that serve supports.
  const configMap = readFileSync(join(DEPLOY, 'kubernetes', 'configmap.yaml'), 'utf8');
  const quickstart = readFileSync(join(ROOT, 'docs', 'quickstart.md'), 'utf8');
  for (const [name, text] of [
    ['configmap.yaml', configMap],
    ['quickstart.md', quickstart],
  ]) {
    assert.match(text, /1 MiB/, name);
    assert.match(text, /6,000 to 10,000 keys/, name);
    assert.match(text, /--bundle https:\/\//, name);
    assert.match(text, /--bundle-public-key/, name);
    assert.match(text, /kubectl apply --server-side -f -/, name);
  }
  assert.match(readFileSync(join(DEPLOY, 'kubernetes', 'deployment.yaml'), 'utf8'), /at most 1 MiB/);
  const serveUsage = mtlsgate(['help', 'serve']).stdout;
  for (const flag of ['--bundle FILE|URL', '--bundle-public-key', '--poll-interval']) assert.ok(serveUsage.includes(flag), flag);
});
