import type { Command } from '../command.ts';

export const command: Command = {
  name: 'token',
  summary: '(not built yet)',
  usage: 'mtlsgate token',
  async run() {
    console.error('mtlsgate token: not built yet');
    return 2;
  },
};
