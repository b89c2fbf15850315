// `mtlsgate check DIR`: the compile without the bundle, for CI (`--format github` annotates
// the pull request). Same diagnostics and exit codes as compile.
import type { Command } from '../command.ts';
import { runCompiler, sharedFlags } from './compile.ts';

const usage = `usage: mtlsgate check DIR|- [--format text|json|github] [--strict] [--allow-empty] [--exclude PATTERN] [--allow-outside PATH]

Validates the config directory DIR (every *.yaml / *.yml, recursively, except what
DIR/.mtlsgateignore or --exclude names; "-" reads one YAML stream from standard input)
without writing a bundle.
Exit status: 0 ok (warnings allowed; none under --strict), 1 config errors, 2 usage or I/O errors.

Options:
${sharedFlags}`;

export const command: Command = {
  name: 'check',
  summary: 'validate a config directory (CI); no bundle written',
  usage,
  run: (argv) => runCompiler(argv, false),
};
