import type { Command } from '../command.ts';

export const command: Command = {
  name: 'compile',
  summary: '(not built yet)',
  usage: 'mtlsgate compile',
  async run() {
    console.error('mtlsgate compile: not built yet');
    return 2;
  },
};
