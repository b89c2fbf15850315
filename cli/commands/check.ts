import type { Command } from '../command.ts';

export const command: Command = {
  name: 'check',
  summary: '(not built yet)',
  usage: 'mtlsgate check',
  async run() {
    console.error('mtlsgate check: not built yet');
    return 2;
  },
};
