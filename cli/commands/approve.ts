import type { Command } from '../command.ts';

export const command: Command = {
  name: 'approve',
  summary: '(not built yet)',
  usage: 'mtlsgate approve',
  async run() {
    console.error('mtlsgate approve: not built yet');
    return 2;
  },
};
