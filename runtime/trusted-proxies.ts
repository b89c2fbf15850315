// `--trusted-proxies CIDR,...`: the addresses of the TLS-terminating load balancers whose
// client-certificate header the gateway believes (runtime/client-cert-header.ts). IPv4 and IPv6
// ranges (a bare address is a /32 or /128); an IPv4 peer on a dual-stack socket
// (`::ffff:10.0.0.1`) is matched as the IPv4 address it is. The verdict is kept on the socket,
// so a keep-alive connection asks once.
import { BlockList, isIP } from 'node:net';

const TRUSTED = Symbol('mtlsgate.trustedProxy');

export class TrustedProxies {
  private readonly list = new BlockList();

  /** `cidrs`: "10.0.0.0/8", "2001:db8::/32", "127.0.0.1"; throws Error naming the first bad entry. */
  constructor(readonly cidrs: readonly string[]) {
    if (cidrs.length === 0) throw new Error('names no address range');
    for (const entry of cidrs) {
      const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry.trim());
      const address = m?.[1].replace(/^\[|\]$/g, '') ?? '';
      const family = isIP(address);
      const bits = m?.[2] === undefined ? (family === 6 ? 128 : 32) : Number(m[2]);
      if (family === 0 || bits > (family === 6 ? 128 : 32)) {
        throw new Error(`${JSON.stringify(entry)} is not an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)`);
      }
      this.list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /**
   * The entries that trust every IPv4 or every IPv6 address (`0.0.0.0/0`, `::/0`, which node's
   * BlockList also matches every IPv4 peer against, `::ffff:0:0/96`), for serve's start-up warning:
   * with one of them any client that reaches the gateway is a trusted proxy, and the certificate
   * header it sends names whom it likes. A range holds both ends of a family only when it is all of it.
   */
  everyone(): string[] {
    return this.cidrs.filter((entry) => {
      const one = new TrustedProxies([entry]);
      return (one.trusts('0.0.0.0') && one.trusts('255.255.255.255')) || (one.trusts('::') && one.trusts('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
    });
  }

  /** Is `address` (a socket's remoteAddress) in one of the ranges? */
  trusts(address: string | undefined): boolean {
    if (address === undefined || address === '') return false;
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return this.list.check(address.slice(7), 'ipv4');
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** trusts(socket.remoteAddress), decided once per connection. */
  trustsSocket(socket: { remoteAddress?: string }): boolean {
    const memo = socket as unknown as Record<symbol, boolean | undefined>;
    let verdict = memo[TRUSTED];
    if (verdict === undefined) memo[TRUSTED] = verdict = this.trusts(socket.remoteAddress);
    return verdict;
  }
}

/** "10.0.0.0/8, ::1" -> ["10.0.0.0/8", "::1"]. */
export function splitCidrs(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
