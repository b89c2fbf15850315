// `mtlsgate keygen NAME`: an Ed25519 key pair for signing bundles. NAME.key (private, mode
// 0600) signs at `compile --sign NAME.key`; NAME.pub (public) goes to every gateway as
// `serve --bundle-public-key NAME.pub`. Existing files are never overwritten. Neither output
// format prints a key: the text names the two files, the JSON envelope their paths and key id.
import { existsSync, writeFileSync } from 'node:fs';
import { UsageError, type Command } from '../command.ts';
import { refuseStdout } from '../io.ts';
import { info } from '../output.ts';
import { FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { generateSigningKeys } from '../../bundle/sign.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate keygen NAME [--format text|json|github]

Writes an Ed25519 key pair for signing bundles:
  NAME.key   private key (PKCS#8 PEM, mode 0600): keep it where bundles are compiled (CI secret)
  NAME.pub   public key (SPKI PEM): give it to every gateway
Sign with \`mtlsgate compile DIR -o bundle.json --sign NAME.key\`; make the gateway refuse
anything else with \`mtlsgate serve --bundle-public-key NAME.pub ...\`.
Refuses to overwrite existing files (exit 2).
Exit status: 0 written, 2 usage or I/O (a file it would overwrite: exists).

Options:
  --format text|json|github   json: the envelope of docs/cli-conventions.md with "key" and
                              "public_key" (the two file paths) and "key_id"; no key material
                              is printed in any format`;

export const command: Command = {
  name: 'keygen',
  summary: 'an Ed25519 key pair for signing bundles (NAME.key, NAME.pub)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, FORMAT_OPTIONS);
    const format = parseFormat(values);
    if (positionals.length !== 1) throw new UsageError('give the key name: mtlsgate keygen NAME (writes NAME.key and NAME.pub)');
    const report = new Reporter('keygen', format);
    const name = positionals[0];
    refuseStdout(name, 'two files, NAME.key and NAME.pub', 'a NAME: mtlsgate keygen ci');
    const files = { key: `${name}.key`, public_key: `${name}.pub` };
    const existing = Object.values(files).find((f) => existsSync(f));
    if (existing !== undefined) {
      report.error('exists', `${existing} exists; not overwriting it (remove it or pick another NAME)`, { file: existing });
      report.finish({ ...files, key_id: null });
      return 2;
    }
    const keys = generateSigningKeys();
    writeFileSync(files.key, keys.privatePem, { mode: 0o600, flag: 'wx' });
    writeFileSync(files.public_key, keys.publicPem, { mode: 0o644, flag: 'wx' });
    if (format === 'json') report.finish({ ...files, key_id: keys.keyId });
    else info(`mtlsgate keygen: wrote ${files.key} (private) and ${files.public_key} (public); key id ${keys.keyId}`);
    return 0;
  },
};
