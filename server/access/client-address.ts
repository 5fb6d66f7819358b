/**
 * Who an anonymous request is, for the queue's turns and the waiting quota:
 * its client address, as the app sees it.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';

/**
 * The client address an anonymous start counts under: `req.ip` where Express
 * set it (it honours the app's `trust proxy`), else the socket's peer. IPv4
 * per address; IPv6 per /64, the block one subscriber usually gets, so cycling
 * through the addresses of one's own network buys no extra quota or turns.
 */
export function clientAddress(req: IncomingMessage): string {
  const ip = (req as IncomingMessage & { ip?: unknown }).ip;
  const address = (typeof ip === 'string' && ip) || req.socket?.remoteAddress || 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') && tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
