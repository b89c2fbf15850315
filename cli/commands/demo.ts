import type { Command } from '../command.ts';

export const command: Command = {
  name: 'demo',
  summary: '(not built yet)',
  usage: 'mtlsgate demo',
  async run() {
    console.error('mtlsgate demo: not built yet');
    return 2;
  },
};
