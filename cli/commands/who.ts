// `mtlsgate who --bundle FILE API_ID [--method M] [--path P]`: every identity that can reach an
// API, answered by the gateway's own stages from the bundle that is deployed.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { certFactsFrom, formatWho, whoCanReach } from '../../access/who.ts';
import { loadBundle } from '../../bundle/read.ts';
import { buildSnapshot } from '../../runtime/snapshot.ts';
import { UsageError, type Command } from '../command.ts';

const usage = `usage: mtlsgate who --bundle FILE API_ID [--method M] [--path P] [--certs DIR] [--at ISO] [--format text|json|csv]

Lists every identity that gets through to the API (and path): anyone (a keyless API), its
pinned certificates and CAs, and each key whose own credentials (its certificate, its token,
or both) pass the gateway's request stages, with its policies. The bundle knows certificates
by fingerprint; --certs DIR adds subject and expiry from the PEM files in DIR.

Options:
  --bundle FILE   the bundle to ask
  --method M      the request method (default GET)
  --path P        a path on the API (default its listen_path); relative to the listen path unless it starts with it
  --certs DIR     PEM files to name certificates by subject and expiry
  --at ISO        decide at this moment (key expiry); default now
  --format F      text (default), json or csv`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bundle: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string' },
      certs: { type: 'string' },
      at: { type: 'string' },
      format: { type: 'string', default: 'text' },
    },
  });
  if (!values.bundle) throw new UsageError('give the bundle with --bundle FILE');
  if (positionals.length !== 1) throw new UsageError('give one API id');
  const format = values.format as 'text' | 'json' | 'csv';
  if (!['text', 'json', 'csv'].includes(format)) throw new UsageError(`--format must be text, json or csv, got ${JSON.stringify(values.format)}`);
  const now = values.at === undefined ? Date.now() : Date.parse(values.at);
  if (Number.isNaN(now)) throw new UsageError(`--at must be an ISO time, got ${JSON.stringify(values.at)}`);
  try {
    const bundle = loadBundle(readFileSync(values.bundle));
    const facts = values.certs ? certFactsFrom(values.certs) : new Map();
    const answer = whoCanReach(bundle, buildSnapshot(bundle), positionals[0], { method: values.method!, path: values.path ?? null, now, facts });
    process.stdout.write(formatWho(answer, format));
    return 0;
  } catch (err) {
    console.error(`mtlsgate who: ${(err as Error).message}`);
    return 2;
  }
}

export const command: Command = { name: 'who', summary: 'who can reach an API: certificates, CAs and keys, from the bundle', usage, run };
