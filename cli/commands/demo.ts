// `mtlsgate demo` (what `npm start` runs): demo certificates if absent, compile examples/,
// echo upstreams on the ports the examples proxy to, the gateway on 127.0.0.1:8443 watching
// the bundle, and curl commands to paste with the answer each one gets. Editing a YAML file
// under the config directory recompiles it, so a newcomer can revoke a certificate and watch
// the next request get refused. Ctrl-C stops everything.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { hasDemoPki, writeDemoPki } from '../pki.ts';
import { loadBundle } from '../../bundle/read.ts';
import { createLogger } from '../../runtime/log.ts';
import { startEchoUpstreams } from '../../support/echo-upstream.ts';
import { runUntilSignalled } from '../../runtime/signals.ts';
import { startGateway, StartupError } from '../../runtime/supervisor.ts';
import { watchConfigDir } from '../watch-config.ts';
import { runAccessTests } from '../../access/run.ts';
import { type AccessCase, compileDir, describeFailure, formatDiagnostics } from '../../compiler/index.ts';
import { writeFileAtomic } from '../../common/atomic-write.ts';
import { demoGuide, shellPath } from '../demo-guide.ts';
import { parseHostPort } from '../flags.ts';
import { parseLogLevel } from '../serve-flags.ts';

const usage = `usage: mtlsgate demo [--config DIR] [-o FILE] [--listen HOST:PORT] [--admin HOST:PORT|off]

The whole thing on your machine, in one command (npm start):
  1. demo certificates in DIR/certs/ (if absent; git-ignored), like \`mtlsgate certs\`
  2. DIR compiled into FILE (default .demo/bundle.json)
  3. an echo upstream on each loopback port the APIs proxy to
  4. the gateway on --listen (default 127.0.0.1:8443), admin on --admin (default 127.0.0.1:9901)
  5. curl commands to paste, each with the answer it gets
Edit a YAML file in DIR and save: it is recompiled and the gateway reloads it.
Exit status: 0 stopped (Ctrl-C), 1 the config does not compile, 2 usage or start-up errors.

Options:
  --config DIR        config directory (default examples)
  -o, --out FILE      where the bundle is written (default .demo/bundle.json)
  --listen HOST:PORT  gateway (default 127.0.0.1:8443; port 0 = any free port)
  --admin HOST:PORT   admin listener, or off (default 127.0.0.1:9901)
  --log-level LEVEL   request and reload log lines on stdout (default info)`;

/** Compiles `configDir`; writes the bundle atomically (the gateway never reads half of it). */
async function compileTo(configDir: string, out: string): Promise<{ ok: boolean; report: string; tests: string }> {
  const result = await compileDir(configDir);
  const report = result.diagnostics.length > 0 ? formatDiagnostics(result, 'text', configDir) : '';
  if (!result.bundle) return { ok: false, report, tests: '' };
  mkdirSync(dirname(out), { recursive: true });
  writeFileAtomic(out, result.bundle);
  return { ok: true, report, tests: accessTestReport(result.bundle, result.tests.cases) };
}

/**
 * The access tests (examples/tests/) on every compile. The demo serves the edit either way (so
 * revoking a certificate shows at once) and says which cases it broke, as check would.
 */
function accessTestReport(bundle: Buffer, cases: AccessCase[]): string {
  if (cases.length === 0) return '';
  const outcomes = runAccessTests(bundle, cases);
  const failed = cases.flatMap((c, i) => (outcomes[i].pass ? [] : [`  ${c.file}:${c.line}:${c.col}: ${describeFailure(c, outcomes[i])}`]));
  const head = `access tests: ${cases.length - failed.length} passed, ${failed.length} failed`;
  return failed.length === 0 ? head : `${head} (served anyway; \`mtlsgate check\` fails on them):\n${failed.join('\n')}`;
}

export const command: Command = {
  name: 'demo',
  summary: 'npm start: demo certificates, compile examples/, echo upstreams, gateway, curl commands',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        config: { type: 'string', default: 'examples' },
        out: { type: 'string', short: 'o', default: join('.demo', 'bundle.json') },
        listen: { type: 'string', default: '127.0.0.1:8443' },
        admin: { type: 'string', default: '127.0.0.1:9901' },
        'log-level': { type: 'string' },
      },
    });
    void positionals;
    const configDir = resolve(values.config);
    const out = resolve(values.out);
    const certsDir = join(configDir, 'certs');
    const listen = parseHostPort(values.listen, '--listen');
    const admin = values.admin === 'off' ? null : parseHostPort(values.admin, '--admin', true, '127.0.0.1:9901');
    const logger = createLogger({ level: parseLogLevel(values['log-level']) });

    if (!hasDemoPki(certsDir)) {
      await writeDemoPki(certsDir);
      console.log(`generated demo certificates in ${shellPath(certsDir)} (private keys included: git-ignored, demo only)`);
    }
    const compiled = await compileTo(configDir, out);
    if (!compiled.ok) {
      console.error(`mtlsgate demo: ${shellPath(configDir)} does not compile:\n${compiled.report}`);
      return 1;
    }
    if (compiled.report) console.log(compiled.report);
    if (compiled.tests) console.log(compiled.tests);
    const bundle = loadBundle(readFileSync(out));

    let upstreams;
    try {
      upstreams = await startEchoUpstreams(Object.values(bundle.content.apis));
    } catch (err) {
      console.error(`mtlsgate demo: ${(err as Error).message}`);
      return 2;
    }
    const closeUpstreams = () => Promise.all(upstreams.map((u) => u.close())).then(() => undefined);

    let running;
    try {
      running = await startGateway({
        bundle: out,
        tlsCertFile: join(certsDir, 'server.pem'),
        tlsKeyFile: join(certsDir, 'server-key.pem'),
        listen,
        admin,
        drainTimeoutMs: 5_000,
        pollIntervalMs: 5_000,
        onLimiterError: 'allow',
        logger,
      });
    } catch (err) {
      await closeUpstreams();
      if (!(err instanceof StartupError)) throw err;
      console.error(`mtlsgate demo: ${err.message}`);
      return 2;
    }

    // Saving a YAML file recompiles; the gateway's own bundle watch takes the result.
    const configWatch = watchConfigDir(configDir, async () => {
      try {
        const r = await compileTo(configDir, out);
        if (r.ok) console.log(`recompiled ${shellPath(configDir)} -> ${shellPath(out)}${r.tests ? `; ${r.tests}` : ''}`);
        else console.log(`${shellPath(configDir)} has errors; the gateway keeps the last good bundle:\n${r.report}`);
      } catch (err) {
        console.log(`recompile failed: ${(err as Error).message}`);
      }
    });
    await configWatch.ready;

    const gatewayUrl = `https://${listen.host === '0.0.0.0' || listen.host === '::' ? 'localhost' : listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${running.gatewayAddress.port}`;
    console.log(
      demoGuide({
        gatewayUrl,
        adminUrl: running.adminAddress ? `http://${running.adminAddress.address}:${running.adminAddress.port}` : null,
        configDir,
        certsDir,
        bundleFile: out,
        content: bundle.content,
        upstreams: upstreams.map((u) => ({ name: u.name, port: u.address.port })).sort((a, b) => a.port - b.port),
      }),
    );

    await runUntilSignalled(running, logger, async () => {
      await configWatch.close();
      await closeUpstreams();
    });
    logger.flush();
    console.log('demo stopped');
    setTimeout(() => process.exit(0), 1_000).unref();
    return 0;
  },
};
