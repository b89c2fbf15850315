import type { Command } from '../command.ts';

export const command: Command = {
  name: 'serve',
  summary: '(not built yet)',
  usage: 'mtlsgate serve',
  async run() {
    console.error('mtlsgate serve: not built yet');
    return 2;
  },
};
