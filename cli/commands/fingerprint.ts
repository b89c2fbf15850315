import type { Command } from '../command.ts';

export const command: Command = {
  name: 'fingerprint',
  summary: '(not built yet)',
  usage: 'mtlsgate fingerprint',
  async run() {
    console.error('mtlsgate fingerprint: not built yet');
    return 2;
  },
};
