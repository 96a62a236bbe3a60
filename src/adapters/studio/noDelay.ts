/**
 * tedious leaves Nagle's algorithm on its socket and sends a request in more than one write, so the
 * second write waits until FS acknowledges the first — a delayed ACK on every statement. Against the
 * sandbox's FS stand-in that doubled a round trip (SELECT 1: ≈17 ms → ≈9 ms with Nagle off, on a
 * loaded 2-core machine). tedious takes a `connector` in place of its own socket set-up; this one
 * connects as tedious does by default (net.connect to the host and port it is handed; Node tries the
 * host's addresses in turn) and turns Nagle off. TLS, when asked for, is still tedious's, on top.
 */
import net from 'node:net';

interface ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
}

/** the connector tedious calls as connector(options, lookup, signal) */
export async function connectWithoutNagle(options: ConnectOptions, _lookup?: unknown, signal?: AbortSignal): Promise<net.Socket> {
  signal?.throwIfAborted();
  return await new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress, noDelay: true });
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
    };
    const onAbort = () => {
      done();
      socket.destroy();
      reject(signal!.reason);
    };
    const onError = (err: Error) => {
      done();
      socket.destroy();
      reject(err);
    };
    const onConnect = () => {
      done();
      socket.setNoDelay(true);
      resolve(socket);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}
