// `mtlsgate version` (and `mtlsgate --version`): the version, and with --format json the
// Node.js version it runs on, for bug reports.
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { VERSION } from '../../runtime/version.ts';

const usage = `usage: mtlsgate version [--format text|json|github]

Prints the mtlsgate version (also: mtlsgate --version). --format json: the envelope of
docs/cli-conventions.md with "version" and "node"; github prints the text.
Exit status: 0 printed, 2 usage.`;

export const command: Command = {
  name: 'version',
  summary: 'print the mtlsgate version (also --version)',
  usage,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: FORMAT_OPTIONS });
    const format = parseFormat(values);
    if (format === 'json') new Reporter('version', format).finish({ version: VERSION, node: process.versions.node });
    else console.log(VERSION);
    return 0;
  },
};
