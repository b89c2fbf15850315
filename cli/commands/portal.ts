// `mtlsgate portal`: the self-serve page where a developer picks a catalog plan, pastes a
// public certificate and gets a key (written into the config directory, recompiled into the
// bundle the gateway watches).
import { statSync } from 'node:fs';
import { MAX_CERT_FILE_BYTES } from '../../cert/read.ts';
import { readRegularFile } from '../../common/regular-file.ts';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { UsageError, type Command } from '../command.ts';
import { bundleOut, CONFIG_OUT_OPTIONS, parseCommandLine } from '../flags.ts';
import { createLogger } from '../../runtime/log.ts';
import { parseHostPort } from '../flags.ts';
import { createPortal } from '../../portal/server.ts';
import { MAX_START_WAIT_MS, START_WAIT_DEADLINE_MS, StartupCompile } from '../../portal/startup.ts';
import { DEFAULT_DEVELOPER_KEY_LIMIT } from '../../portal/key-limit.ts';
import { compilerFor, type CompileFn } from '../../portal/compile.ts';
import { readSigningKeyFile } from '../../bundle/sign.ts';
import type { OidcOptions } from '../../portal/oidc.ts';
import { errnoMessage } from '../../common/errno.ts';
import { listen as listenOn } from '../../common/listen.ts';
import { warn } from '../output.ts';

const usage = `usage: mtlsgate portal --config DIR -o OUT [--listen HOST:PORT] [--gateway-url URL]
         [--oidc-issuer URL --oidc-client-id ID --oidc-client-secret-file FILE
          [--admins EMAIL,...] [--admin-group GROUP] [--public-url URL] [--developer-key-limit N|off]]
         [--submission-limit N] [--startup-wait SECONDS]
         [--sign KEYFILE] [--cache DIR] [--allow-outside PATH]

Serves the self-serve developer portal. Policies with a \`portal:\` block are offered as plans,
for the APIs they grant that use dynamic mTLS (auth.use_certificate). A developer pastes a
public certificate; the portal writes DIR/keys/portal/<id>.yaml, recompiles DIR into OUT
(atomically) and shows the key id, the certificate's SHA-256 and a curl command. A gateway
watching OUT picks the key up on its own. Plans with require_approval: true give keys that
stay inactive until \`mtlsgate approve KEY_ID --config DIR -o OUT\` (or an admin approves
them on the portal's admin page). Every certificate needs proof of possession: the developer
signs a one-time challenge with its private key (\`openssl dgst -sha256 -sign\`).

Without --oidc-* the portal has no sign-in: it listens on loopback only (another --listen
address is refused) and says so on every page; a key's status is shown to whoever holds the
receipt handed out with it. With --oidc-* developers sign in (authorization code + PKCE),
own the keys they request (\`owner:\` in the key's YAML), see and manage only those, and
admins approve or deny pending keys in the browser.

Options:
  --config DIR          the config directory (the source of truth; keys are added to it)
  -o, --out OUT         the bundle to rewrite after each new key (what \`serve --bundle\` reads;
                        --bundle OUT, the old spelling, still works)
  --listen HOST:PORT    where the portal listens (default 127.0.0.1:3000: loopback only)
  --gateway-url URL     the gateway's base URL for the curl commands shown
                        (default https://localhost:8443)
  --oidc-issuer URL     OpenID Connect issuer (https; http only on loopback, for development)
  --oidc-client-id ID   the portal's client id at the issuer
  --oidc-client-secret-file FILE
                        file holding the client secret (first line; never on the command line)
  --admins EMAIL,...    users (by verified email) who get the admin page
  --admin-group GROUP   members of GROUP (the \`groups\` claim) get the admin page
  --public-url URL      the portal's URL as browsers reach it (default http://LISTEN; required
                        when LISTEN is 0.0.0.0 or ::); the sign-in callback is
                        URL/auth/callback; https makes cookies Secure (plain http beyond
                        loopback is warned about)
  --developer-key-limit N|off
                        keys one signed-in developer may hold (default 20; off: no cap), counted
                        from the key files naming them as owner: awaiting approval, active,
                        switched off and expired alike, until an admin removes the file. Admins
                        are capped too. A request beyond it is refused (403, code key_limit)
  --submission-limit N  certificate submissions per client and hour (default 30, burst 10)
  --startup-wait SECONDS
                        how long a key request sent during the start-up compile waits for it
                        (default 30, at most 3600): then it is answered 503 "starting" with
                        Retry-After and never runs. Shorter than a proxy's timeout in front of
                        the portal; longer when the start-up compile takes longer (far beyond
                        20,000 key files, a slow disk)
  --sign KEYFILE        sign every bundle the portal writes with this Ed25519 private key
                        (\`mtlsgate keygen\`), for gateways started with --bundle-public-key
  --cache DIR           compile cache (as \`compile --cache\`) for the full compiles (at start, and
                        after a change to anything but key files); keep DIR outside the config
                        directory. Either way the portal keeps its last compile in memory, so a
                        new key recompiles only its own file; the bundle bytes stay those of a
                        full compile
  --allow-outside PATH  a file or directory outside DIR that may be read (repeatable; as
                        \`compile --allow-outside\`: a pki/ directory beside the config)

At start the portal listens at once, then recompiles the bundle from DIR (in a worker thread;
the bundle is rewritten only if its bytes differ). The request form shows the catalog as soon
as the policies are compiled (before the keys); a key request sent meanwhile waits for the
compile (at most 32 wait, each at most --startup-wait; more answer 503). Until the compile is
done, the key pages (My keys, a key, the admin page, a key's status by its receipt) answer from
the key files, and their buttons 503 "starting: compiling the config (N files)"; sign-in and the
static files answer meanwhile.
Exit status: 0 after SIGINT/SIGTERM, 2 for bad flags, when the port cannot be opened, or when
DIR cannot be read or OUT written at start.`;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** 0.0.0.0 or :: (every address): no URL a browser can use. */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

export const command: Command = {
  name: 'portal',
  summary: 'self-serve page: a developer pastes a public certificate and gets a key',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      ...CONFIG_OUT_OPTIONS,
      listen: { type: 'string' },
      'gateway-url': { type: 'string' },
      'oidc-issuer': { type: 'string' },
      'oidc-client-id': { type: 'string' },
      'oidc-client-secret-file': { type: 'string' },
      admins: { type: 'string' },
      'admin-group': { type: 'string' },
      'public-url': { type: 'string' },
      'submission-limit': { type: 'string' },
      'developer-key-limit': { type: 'string' },
      'startup-wait': { type: 'string' },
      sign: { type: 'string' },
      cache: { type: 'string' },
      'allow-outside': { type: 'string', multiple: true },
    });
    values.bundle = bundleOut(values);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the directory goes after --config)`);
    if (!values.config || !values.bundle) throw new UsageError('--config DIR and -o OUT (the bundle) are both required');
    const listen = parseHostPort(values.listen ?? '127.0.0.1:3000', '--listen', false, '127.0.0.1:3000');
    const gatewayUrl = values['gateway-url'] ?? 'https://localhost:8443';
    let parsedGateway: URL;
    try {
      parsedGateway = new URL(gatewayUrl);
    } catch {
      throw new UsageError(`--gateway-url must be a URL like https://gateway.example.com:8443, not ${JSON.stringify(gatewayUrl)}`);
    }
    if (parsedGateway.protocol !== 'https:') throw new UsageError('--gateway-url must be an https:// URL (mTLS needs TLS)');
    const oidc = oidcOptions(values);
    if (oidc === undefined && !isLoopback(listen.host)) {
      throw new UsageError(`--listen ${listen.host} is not a loopback address: without sign-in (--oidc-issuer ...) the portal answers only on this machine`);
    }
    let publicUrl: string | undefined;
    if (values['public-url'] !== undefined) {
      try {
        const u = new URL(values['public-url']);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
        publicUrl = u.origin;
      } catch {
        throw new UsageError(`--public-url must be an http(s) URL like https://portal.example.com, not ${JSON.stringify(values['public-url'])}`);
      }
    }
    if (oidc !== undefined && publicUrl === undefined && isWildcard(listen.host)) {
      // The default public URL is http://LISTEN: http://0.0.0.0:3000/auth/callback is no address a
      // browser can come back to, so the provider's redirect would fail after every sign-in.
      throw new UsageError(
        `--listen ${listen.host} listens on every address: give --public-url URL, the portal's address as browsers reach it (register URL/auth/callback at the provider)`,
      );
    }
    if (oidc !== undefined && !isLoopback(listen.host) && (publicUrl ?? 'http:').startsWith('http:'))
      warn(
        'mtlsgate portal: warning: sign-in over plain http beyond this machine: session cookies are not Secure and travel in clear; serve the portal over https (a TLS-terminating proxy) and give --public-url https://...',
      );
    let submissionLimit: { burst: number; perHour: number } | undefined;
    if (values['submission-limit'] !== undefined) {
      const n = Number(values['submission-limit']);
      if (!Number.isSafeInteger(n) || n < 1) throw new UsageError('--submission-limit must be a positive integer');
      submissionLimit = { burst: Math.min(n, 10), perHour: n };
    }
    const developerKeyLimit = parseKeyLimit(values['developer-key-limit'], oidc !== undefined);
    if (!statSync(values.config, { throwIfNoEntry: false })?.isDirectory()) {
      console.error(`mtlsgate portal: ${values.config} is not a directory`);
      return 2;
    }
    const startupWaitMs = parseStartupWait(values['startup-wait']);
    const startup = new StartupCompile(startupWaitMs);
    let compile: CompileFn;
    try {
      compile = compilerFor({
        signingKey: values.sign === undefined ? undefined : readSigningKeyFile(values.sign),
        cacheDir: values.cache,
        allowOutside: values['allow-outside'] ?? [],
        // The portal keeps its last compile in memory: a new key recompiles its own file (compiler/live-compile.ts).
        live: true,
        // Its full compiles (the start-up one first) run in a worker thread: the portal answers meanwhile.
        offThread: true,
        onLoaded: startup.loaded,
      });
    } catch (err) {
      console.error(`mtlsgate portal: ${(err as Error).message}`);
      return 2;
    }
    const logger = createLogger();
    // How long the event loop was held at most while the start-up compile ran (logged when it is done).
    const stalls = monitorEventLoopDelay({ resolution: 5 });
    stalls.enable();
    const startedAt = performance.now();
    // It listens first; the start-up compile runs after (portal/startup.ts).
    const { server, started } = createPortal({
      configDir: values.config,
      bundlePath: values.bundle,
      gatewayUrl: parsedGateway.origin,
      logger,
      oidc,
      publicUrl,
      submissionLimit,
      developerKeyLimit,
      compile,
      startup,
    });
    let address: AddressInfo;
    try {
      address = await listenOn(server, listen.port, listen.host);
    } catch (err) {
      // The start-up compile is under way: the process exits once it is done (its worker keeps the
      // process up), having written the bundle, as it had before the listen when it ran first.
      started?.catch(() => undefined);
      console.error(`mtlsgate portal: cannot listen on ${listen.host}:${listen.port}: ${errnoMessage(err)}`);
      return 2;
    }
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    logger.info(
      {
        url: `http://${host}:${address.port}/`,
        config: values.config,
        bundle: values.bundle,
        sign_in: oidc ? oidc.issuer : 'none (loopback only)',
        callback: oidc ? `${publicUrl ?? `http://${host}:${address.port}`}/auth/callback` : undefined,
        developer_key_limit: oidc ? (developerKeyLimit ?? 'off') : undefined,
        startup_wait_s: startupWaitMs / 1000,
      },
      'mtlsgate portal listening',
    );
    const status = await new Promise<number>((resolve) => {
      const stop = (code: number) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        server.close(() => resolve(code));
        server.closeIdleConnections();
      };
      const onSignal = () => stop(0);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      started!.then(
        (compiled) => {
          const ms = Math.round(performance.now() - startedAt);
          // The monitor records a stall when its timer fires after it: the handoff of the compile's
          // state (a structured clone, then the live state built) ends right before this turn.
          setTimeout(() => {
            stalls.disable();
            logger.info(
              { ms, errors: compiled.errorCount, warnings: compiled.warningCount, event_loop_max_ms: Math.round(stalls.max / 1e6) },
              'mtlsgate portal: the start-up compile is done',
            );
          }, 20);
          if (compiled.bundle === null)
            console.error(`mtlsgate portal: the config has errors; the portal shows them and issues no key until they are fixed:\n${compiled.report}`);
        },
        (err: unknown) => {
          stalls.disable();
          // The directory cannot be read or the bundle cannot be written: as before the portal listened, exit 2.
          console.error(`mtlsgate portal: cannot compile ${values.config} into ${values.bundle}: ${errnoMessage(err)}`);
          stop(2);
        },
      );
    });
    logger.info({}, 'mtlsgate portal stopped');
    logger.flush();
    return status;
  },
};

/** --developer-key-limit: a count, or null for off; the default when not given. Only a signed-in portal has owners to count. */
function parseKeyLimit(value: string | undefined, signedIn: boolean): number | null {
  if (value === undefined) return DEFAULT_DEVELOPER_KEY_LIMIT;
  if (!signedIn) throw new UsageError('--developer-key-limit needs --oidc-issuer URL: without sign-in keys have no owner to count');
  if (value === 'off') return null;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--developer-key-limit must be a positive whole number or off, not ${JSON.stringify(value)}`);
  return n;
}

/** --startup-wait: seconds (a decimal number, more than 0, at most MAX_START_WAIT_MS) as milliseconds; the default when not given. */
function parseStartupWait(value: string | undefined): number {
  if (value === undefined) return START_WAIT_DEADLINE_MS;
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(seconds > 0) || seconds * 1000 > MAX_START_WAIT_MS)
    throw new UsageError(`--startup-wait must be a number of seconds, more than 0 and at most ${MAX_START_WAIT_MS / 1000}, not ${JSON.stringify(value)}`);
  return Math.round(seconds * 1000);
}

type Flags = Record<string, string | string[] | boolean | undefined>;

/** The OIDC settings from the flags; undefined without --oidc-issuer. */
function oidcOptions(values: Flags): OidcOptions | undefined {
  const issuer = values['oidc-issuer'];
  const clientId = values['oidc-client-id'];
  const secretFile = values['oidc-client-secret-file'];
  const admins = values.admins;
  const adminGroup = values['admin-group'];
  if (typeof issuer !== 'string') {
    if (clientId !== undefined || secretFile !== undefined || admins !== undefined || adminGroup !== undefined) {
      throw new UsageError('--oidc-client-id, --oidc-client-secret-file, --admins and --admin-group need --oidc-issuer URL');
    }
    return undefined;
  }
  if (typeof clientId !== 'string' || typeof secretFile !== 'string') {
    throw new UsageError('--oidc-issuer needs --oidc-client-id ID and --oidc-client-secret-file FILE');
  }
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new UsageError(`--oidc-issuer must be a URL like https://login.example.com, not ${JSON.stringify(issuer)}`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[|\]$/g, '')))) {
    throw new UsageError('--oidc-issuer must be an https:// URL (plain http only for a provider on loopback, in development)');
  }
  let clientSecret: string;
  try {
    clientSecret = readRegularFile(secretFile, MAX_CERT_FILE_BYTES).toString('utf8').split(/\r?\n/)[0]!.trim();
  } catch (err) {
    throw new UsageError(`cannot read --oidc-client-secret-file ${secretFile}: ${errnoMessage(err)}`);
  }
  if (clientSecret === '') throw new UsageError(`--oidc-client-secret-file ${secretFile} is empty`);
  return {
    issuer: url.href,
    clientId,
    clientSecret,
    admins:
      typeof admins === 'string'
        ? admins
            .split(',')
            .map((a) => a.trim())
            .filter(Boolean)
        : [],
    adminGroup: typeof adminGroup === 'string' && adminGroup !== '' ? adminGroup : undefined,
  };
}
