// `mtlsgate keygen NAME`: an Ed25519 key pair for signing bundles. NAME.key (private, mode
// 0600) signs at `compile --sign NAME.key`; NAME.pub (public) goes to every gateway as
// `serve --bundle-public-key NAME.pub`. Existing files are never overwritten.
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { info } from '../output.ts';
import { generateSigningKeys } from '../../bundle/sign.ts';

const usage = `usage: mtlsgate keygen NAME

Writes an Ed25519 key pair for signing bundles:
  NAME.key   private key (PKCS#8 PEM, mode 0600): keep it where bundles are compiled (CI secret)
  NAME.pub   public key (SPKI PEM): give it to every gateway
Sign with \`mtlsgate compile DIR -o bundle.json --sign NAME.key\`; make the gateway refuse
anything else with \`mtlsgate serve --bundle-public-key NAME.pub ...\`.
Refuses to overwrite existing files.`;

export const command: Command = {
  name: 'keygen',
  summary: 'an Ed25519 key pair for signing bundles (NAME.key, NAME.pub)',
  usage,
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError('give the key name: mtlsgate keygen NAME (writes NAME.key and NAME.pub)');
    const name = positionals[0];
    const files = { key: `${name}.key`, pub: `${name}.pub` };
    for (const f of Object.values(files)) {
      if (existsSync(f)) {
        process.stderr.write(`mtlsgate keygen: ${f} exists; not overwriting it (remove it or pick another NAME)\n`);
        return 2;
      }
    }
    const keys = generateSigningKeys();
    writeFileSync(files.key, keys.privatePem, { mode: 0o600, flag: 'wx' });
    writeFileSync(files.pub, keys.publicPem, { mode: 0o644, flag: 'wx' });
    info(`mtlsgate keygen: wrote ${files.key} (private) and ${files.pub} (public); key id ${keys.keyId}`);
    return 0;
  },
};
