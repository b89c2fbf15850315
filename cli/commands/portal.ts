// `mtlsgate portal`: the self-serve page where a developer picks a catalog plan, pastes a
// public certificate and gets a key (written into the config directory, recompiled into the
// bundle the gateway watches).
import { statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { createLogger } from '../../runtime/log.ts';
import { parseHostPort } from './serve.ts';
import { createPortal } from '../../portal/server.ts';
import { syncBundle } from '../../portal/issue-key.ts';

const usage = `usage: mtlsgate portal --config DIR --bundle OUT [--listen HOST:PORT] [--gateway-url URL]

Serves the self-serve developer portal. Policies with a \`portal:\` block are offered as plans,
for the APIs they grant that use dynamic mTLS (auth.use_certificate). A developer pastes a
public certificate; the portal writes DIR/keys/portal/<id>.yaml, recompiles DIR into OUT
(atomically) and shows the key id, the certificate's SHA-256 and a curl command. A gateway
watching OUT picks the key up on its own. Plans with require_approval: true give keys that
stay inactive until \`mtlsgate approve KEY_ID --config DIR --bundle OUT\`.

Options:
  --config DIR          the config directory (the source of truth; keys are added to it)
  --bundle OUT          the bundle to rewrite after each new key (what \`serve --bundle\` reads)
  --listen HOST:PORT    where the portal listens (default 127.0.0.1:3000: loopback only)
  --gateway-url URL     the gateway's base URL for the curl commands shown
                        (default https://localhost:8443)

At start the bundle is recompiled from DIR (and rewritten only if its bytes differ).
Exit status: 0 after SIGINT/SIGTERM, 2 for bad flags or when the port cannot be opened.`;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export const command: Command = {
  name: 'portal',
  summary: 'self-serve page: a developer pastes a public certificate and gets a key',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string' }, bundle: { type: 'string' }, listen: { type: 'string' }, 'gateway-url': { type: 'string' } },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the directory goes after --config)`);
    if (!values.config || !values.bundle) throw new UsageError('--config DIR and --bundle OUT are both required');
    const listen = parseHostPort(values.listen ?? '127.0.0.1:3000', '--listen');
    const gatewayUrl = values['gateway-url'] ?? 'https://localhost:8443';
    let parsedGateway: URL;
    try {
      parsedGateway = new URL(gatewayUrl);
    } catch {
      throw new UsageError(`--gateway-url must be a URL like https://gateway.example.com:8443, not ${JSON.stringify(gatewayUrl)}`);
    }
    if (parsedGateway.protocol !== 'https:') throw new UsageError('--gateway-url must be an https:// URL (mTLS needs TLS)');
    if (!statSync(values.config, { throwIfNoEntry: false })?.isDirectory()) {
      console.error(`mtlsgate portal: ${values.config} is not a directory`);
      return 2;
    }
    const logger = createLogger();
    let compiled;
    try {
      compiled = await syncBundle(values.config, values.bundle);
    } catch (err) {
      console.error(`mtlsgate portal: cannot compile ${values.config} into ${values.bundle}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return 2;
    }
    if (compiled.bundle === null) {
      console.error(`mtlsgate portal: the config has errors; the portal shows them and issues no key until they are fixed:\n${compiled.report}`);
    }
    const { server } = createPortal({ configDir: values.config, bundlePath: values.bundle, gatewayUrl: parsedGateway.origin, logger });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listen.port, listen.host, () => resolve());
      });
    } catch (err) {
      console.error(`mtlsgate portal: cannot listen on ${listen.host}:${listen.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return 2;
    }
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    logger.info({ url: `http://${host}:${address.port}/`, config: values.config, bundle: values.bundle }, 'mtlsgate portal listening');
    if (!isLoopback(listen.host)) {
      logger.warn(
        { listen: `${listen.host}:${listen.port}` },
        'the portal listens beyond loopback: anyone who reaches it can request keys; put it behind your SSO proxy',
      );
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close(() => resolve());
        server.closeIdleConnections();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    logger.info({}, 'mtlsgate portal stopped');
    logger.flush();
    return 0;
  },
};
