// Every `mtlsgate` command, in the order `mtlsgate --help` lists them. Adding a command is one
// import and one entry here: help, `help COMMAND`, did-you-mean and completion read this list.
import type { Command } from './command.ts';
import { command as compile } from './commands/compile.ts';
import { command as check } from './commands/check.ts';
import { command as diff } from './commands/diff.ts';
import { command as serve } from './commands/serve.ts';
import { command as fingerprint } from './commands/fingerprint.ts';
import { command as token } from './commands/token.ts';
import { command as keygen } from './commands/keygen.ts';
import { command as certs } from './commands/certs.ts';
import { command as portal } from './commands/portal.ts';
import { command as approve } from './commands/approve.ts';
import { command as demo } from './commands/demo.ts';
import { command as importCmd } from './commands/import.ts';
import { command as testCmd } from './commands/test.ts';
import { command as explain } from './commands/explain.ts';
import { command as who } from './commands/who.ts';
import { command as help } from './commands/help.ts';
import { command as version } from './commands/version.ts';
import { command as completion } from './commands/completion.ts';

export const commands: Command[] = [
  compile,
  check,
  diff,
  serve,
  fingerprint,
  token,
  keygen,
  certs,
  portal,
  approve,
  demo,
  importCmd,
  testCmd,
  explain,
  who,
  completion,
  help,
  version,
];

export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}
