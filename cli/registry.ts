// Every `mtlsgate` command, in the order `mtlsgate --help` lists them. Adding a command is one
// entry here: help, `help COMMAND`, did-you-mean and completion read this list.
// Each module is loaded when its command runs (or when a list of them all is asked for: help,
// completion): `mtlsgate version` or `check` does not evaluate the gateway's runtime (undici,
// pino, prom-client), the portal's (openid-client) or the certificate generator's
// (@peculiar/x509). The bundler keeps them in dist/mtlsgate.mjs and runs each on first import.
import type { Command } from './command.ts';

type Load = () => Promise<{ command: Command }>;

const modules = new Map<string, Load>([
  ['compile', () => import('./commands/compile.ts')],
  ['check', () => import('./commands/check.ts')],
  ['diff', () => import('./commands/diff.ts')],
  ['serve', () => import('./commands/serve.ts')],
  ['fingerprint', () => import('./commands/fingerprint.ts')],
  ['token', () => import('./commands/token.ts')],
  ['keygen', () => import('./commands/keygen.ts')],
  ['certs', () => import('./commands/certs.ts')],
  ['portal', () => import('./commands/portal.ts')],
  ['approve', () => import('./commands/approve.ts')],
  ['demo', () => import('./commands/demo.ts')],
  ['import', () => import('./commands/import.ts')],
  ['test', () => import('./commands/test.ts')],
  ['explain', () => import('./commands/explain.ts')],
  ['who', () => import('./commands/who.ts')],
  ['completion', () => import('./commands/completion.ts')],
  ['help', () => import('./commands/help.ts')],
  ['version', () => import('./commands/version.ts')],
]);

/** The commands' names, in help order, without loading any of them. */
export const commandNames: readonly string[] = [...modules.keys()];

export async function findCommand(name: string): Promise<Command | undefined> {
  return (await modules.get(name)?.())?.command;
}

/** Every command, in help order (loads them all). */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(commandNames.map(async (name) => (await modules.get(name)!()).command));
}
