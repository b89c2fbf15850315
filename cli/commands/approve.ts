// `mtlsgate approve KEY_ID`: turns on a portal key that waits for approval.
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { approveKey } from '../../portal/approve-key.ts';
import { compilerFor, type CompileFn } from '../../portal/compile.ts';
import { readSigningKeyFile } from '../../bundle/sign.ts';

const usage = `usage: mtlsgate approve KEY_ID --config DIR [-o OUT] [--sign KEYFILE]

Approves a key requested in the portal for a plan with require_approval: true: sets
is_inactive: false in DIR/keys/portal/KEY_ID.yaml (comments kept), recompiles DIR and, with
-o OUT, writes the bundle the gateway watches. If the config does not compile, the key file
is left as it was.

Options:
  --config DIR     the config directory holding keys/portal/KEY_ID.yaml
  -o, --out OUT    the bundle to rewrite (--bundle OUT, the old spelling, still works)
  --sign KEYFILE   sign the bundle with this Ed25519 private key (as compile --sign)

Exit status: 0 approved (or already active), 1 no such key or config errors, 2 bad
arguments or I/O errors.`;

export const command: Command = {
  name: 'approve',
  summary: 'turn on a portal key that waits for approval',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string' }, out: { type: 'string', short: 'o' }, bundle: { type: 'string' }, sign: { type: 'string' } },
    });
    values.bundle = values.out ?? values.bundle;
    if (positionals.length !== 1)
      throw new UsageError(positionals.length === 0 ? 'expected the KEY_ID to approve' : `expected one KEY_ID, got ${positionals.length}`);
    if (!values.config) throw new UsageError('--config DIR is required');
    if (!statSync(values.config, { throwIfNoEntry: false })?.isDirectory()) {
      console.error(`mtlsgate approve: ${values.config} is not a directory`);
      return 2;
    }
    let compile: CompileFn;
    try {
      compile = compilerFor({ signingKey: values.sign === undefined ? undefined : readSigningKeyFile(values.sign) });
    } catch (err) {
      console.error(`mtlsgate approve: ${(err as Error).message}`);
      return 2;
    }
    const result = await approveKey(values.config, positionals[0], values.bundle, compile);
    if (result.code === 0) console.log(`mtlsgate approve: ${result.message}`);
    else console.error(`mtlsgate approve: ${result.message}${result.report ? `\n${result.report}` : ''}`);
    return result.code;
  },
};
