import type { Command } from '../command.ts';

export const command: Command = {
  name: 'portal',
  summary: '(not built yet)',
  usage: 'mtlsgate portal',
  async run() {
    console.error('mtlsgate portal: not built yet');
    return 2;
  },
};
