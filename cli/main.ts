// mtlsgate: one CLI, one subcommand per module in cli/commands/.
import { UsageError, type Command } from './command.ts';
import { command as compile } from './commands/compile.ts';
import { command as check } from './commands/check.ts';
import { command as diff } from './commands/diff.ts';
import { command as serve } from './commands/serve.ts';
import { command as fingerprint } from './commands/fingerprint.ts';
import { command as token } from './commands/token.ts';
import { command as certs } from './commands/certs.ts';
import { command as portal } from './commands/portal.ts';
import { command as approve } from './commands/approve.ts';
import { command as demo } from './commands/demo.ts';
import { command as importCmd } from './commands/import.ts';
import { command as testCmd } from './commands/test.ts';
import { command as explain } from './commands/explain.ts';
import { command as who } from './commands/who.ts';

const commands: Command[] = [compile, check, diff, serve, fingerprint, token, certs, portal, approve, demo, importCmd, testCmd, explain, who];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'mtlsgate: declarative client-mTLS gateway (compile YAML to a bundle, serve it)',
    '',
    'usage: mtlsgate <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'mtlsgate <command> --help for its options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    console.log('0.1.0');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`mtlsgate: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`mtlsgate ${cmd.name}: ${(err as Error).message}\n\n${cmd.usage}`);
      return 2;
    }
    console.error(`mtlsgate ${cmd.name}: ${(err as Error).message}`);
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
