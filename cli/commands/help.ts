// `mtlsgate help [COMMAND]`: the command list, or one command's usage.
import { closest } from '../../compiler/suggest.ts';
import { UsageError, type Command } from '../command.ts';
import { commandNames, findCommand, loadCommands } from '../registry.ts';

const usage = `usage: mtlsgate help [COMMAND]

Without COMMAND, lists the commands; with one, prints its usage (the same as
mtlsgate COMMAND --help).
Exit status: 0 printed, 2 an unknown command.`;

/** The top-level help: commands, the flags every command shares, exit statuses. */
export async function overview(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'mtlsgate: declarative client-mTLS gateway (compile YAML to a bundle, serve it)',
    '',
    'usage: mtlsgate <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Flags every command takes:',
    '  -h, --help              this help, or a command\'s with "mtlsgate help COMMAND"',
    '  -q, --quiet             only errors on stderr',
    '  -v, --verbose           more detail on stderr',
    '      --version           print the version (also "mtlsgate version")',
    'Commands with output take --format text|json|github and write files with -o/--out FILE',
    '("-" is standard output; "-" as an input file is standard input).',
    'Exit status: 0 ok, 1 the checked thing has problems, 2 usage or I/O errors.',
  ].join('\n');
}

/** "unknown command "chek" (did you mean "check"?)". */
export function unknownCommand(name: string): string {
  const best = closest(name, [...commandNames]);
  return `unknown command ${JSON.stringify(name)}${best ? ` (did you mean "${best}"?)` : ''}`;
}

export const command: Command = {
  name: 'help',
  summary: "the command list, or one command's usage (help COMMAND)",
  usage,
  async run(argv) {
    if (argv.length === 0) {
      console.log(await overview());
      return 0;
    }
    if (argv.length > 1) throw new UsageError(`help takes one command name, got ${argv.length}`);
    const cmd = await findCommand(argv[0]);
    if (!cmd) throw new UsageError(unknownCommand(argv[0]));
    console.log(cmd.usage);
    return 0;
  },
};
