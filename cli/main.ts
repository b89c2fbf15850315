// mtlsgate: one CLI, one subcommand per module in cli/commands/, listed in cli/registry.ts.
// main handles what every command shares: -h/--help, -q/-v, --version, did-you-mean for a
// mistyped command or flag, short usage errors (as a JSON envelope under --format json), and a
// warning for an MTLSGATE_* variable no command reads.
import { UsageError, type Command } from './command.ts';
import { explainParseError, unknownEnv } from './flags.ts';
import { setVerbosity, warn } from './output.ts';
import { findCommand, loadCommands } from './registry.ts';
import { envelope, wantsJson } from './report.ts';
import { overview, unknownCommand } from './commands/help.ts';
import { VERSION } from '../runtime/version.ts';
import { visibleLines } from '../common/visible-text.ts';

const QUIET = new Set(['-q', '--quiet']);
const VERBOSE = new Set(['-v', '--verbose']);

/** Takes -q/-v out of argv (anywhere before "--"); the command never sees them. */
function globalFlags(argv: string[]): string[] {
  const rest: string[] = [];
  let level: -1 | 0 | 1 = 0;
  let i = 0;
  for (; i < argv.length && argv[i] !== '--'; i++) {
    if (QUIET.has(argv[i])) level = -1;
    else if (VERBOSE.has(argv[i])) level = 1;
    else rest.push(argv[i]);
  }
  setVerbosity(level);
  return [...rest, ...argv.slice(i)];
}

function usageError(cmd: Command | null, message: string, argv: string[]): number {
  const name = cmd ? `mtlsgate ${cmd.name}` : 'mtlsgate';
  if (wantsJson(argv)) process.stdout.write(envelope(cmd?.name ?? '', false, {}, [{ code: 'usage', message }]));
  const firstLine = cmd?.usage.split('\n')[0];
  const more = cmd ? `run "mtlsgate help ${cmd.name}" for every flag` : 'run "mtlsgate help" for the commands';
  process.stderr.write(`${name}: ${visibleLines(message)}\n${firstLine ? `${firstLine}\n` : ''}${more}\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const args = globalFlags(argv);
  const [name, ...rest] = args;
  if (!name) {
    process.stderr.write(`${await overview()}\n`);
    return 2;
  }
  if (name === '--help' || name === '-h') {
    console.log(await overview());
    return 0;
  }
  if (name === '--version') {
    console.log(VERSION);
    return 0;
  }
  const cmd = await findCommand(name);
  if (!cmd) return usageError(null, name.startsWith('-') ? `unknown flag ${name} before the command` : unknownCommand(name), args);
  const beforeDashes = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  if (cmd.env) {
    const known = (await loadCommands()).flatMap((c) => c.env ?? []);
    for (const v of unknownEnv(process.env, known)) warn(`mtlsgate ${cmd.name}: warning: ignoring unknown environment variable ${v}`);
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    const parse = explainParseError(err, cmd, rest);
    if (parse !== null) return usageError(cmd, parse, rest);
    if (err instanceof UsageError) return usageError(cmd, err.message, rest);
    if (wantsJson(rest)) process.stdout.write(envelope(cmd.name, false, {}, [{ code: 'io', message: (err as Error).message }]));
    process.stderr.write(`mtlsgate ${cmd.name}: ${visibleLines((err as Error).message)}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands (serve, portal, demo) resolve only when they are done.
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 2;
  },
);
