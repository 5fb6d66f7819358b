/**
 * Where route jobs call the app: the one owner of the base URL. It is the
 * configured `baseUrl`, or, when nobody configured one, learned: from the
 * server passed to `attach()` once it listens, or from the first request the
 * app serves (the address and port it answered on, over TLS or not). Route
 * jobs then call the app where it already answers.
 */
import https from 'node:https';
import type { IncomingMessage, Server } from 'node:http';

/** `http(s)://host:port` of a local address, as a base URL (IPv4-mapped IPv6 as IPv4, IPv6 bracketed). */
function baseUrlOf(tls: boolean, address: string, port: number): string {
  let host = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (host.includes(':')) host = `[${host}]`;
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

export class AppAddress {
  #url: string | undefined;
  #servedHost: string | undefined;

  constructor(configured: string | undefined) {
    this.#url = configured;
  }

  /** The base URL route jobs call, once known. */
  get url(): string | undefined {
    return this.#url;
  }

  /**
   * The Host of the first request the app served: when the base URL is an
   * address, the name an anonymous route job checks the app's certificate against.
   */
  get servedHost(): string | undefined {
    return this.#servedHost;
  }

  /** Learns the base URL, unless known, from the server the app listens with, now or once it listens. */
  learnFromServer(server: Server): void {
    if (this.#url) return;
    const learn = () => {
      const address = server.address();
      if (!address || typeof address === 'string' || this.#url) return;
      // A wildcard address answers on loopback too, and loopback never leaves the machine.
      const bound = address.address.replace(/^::ffff:/, '');
      const host = bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
      this.#url = baseUrlOf(server instanceof https.Server, host, address.port);
    };
    if (server.listening) learn();
    else server.once('listening', learn);
  }

  /** Learns from a request the app serves: its Host (the first one), and the base URL unless known. */
  learnFromRequest(req: IncomingMessage): void {
    if (this.#servedHost === undefined && req.headers.host) this.#servedHost = req.headers.host;
    if (this.#url) return;
    const socket = req.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | null;
    if (socket?.localAddress && socket.localPort) this.#url = baseUrlOf(socket.encrypted === true, socket.localAddress, socket.localPort);
  }
}
