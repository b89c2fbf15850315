import type { Command } from '../command.ts';

export const command: Command = {
  name: 'certs',
  summary: '(not built yet)',
  usage: 'mtlsgate certs',
  async run() {
    console.error('mtlsgate certs: not built yet');
    return 2;
  },
};
