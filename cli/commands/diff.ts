import type { Command } from '../command.ts';

export const command: Command = {
  name: 'diff',
  summary: '(not built yet)',
  usage: 'mtlsgate diff',
  async run() {
    console.error('mtlsgate diff: not built yet');
    return 2;
  },
};
