import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startReleaseSweeper, type Sweeper } from '../shared/approval/sweeper.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createBoardApp } from './app.js';
import { resolveCredentials, type BoardCredentials } from './auth.js';
import { createBoardDeps, type BoardDeps, type BoardOptions } from './deps.js';

/** How long a stopping board lets requests in flight finish before it cuts their connections. */
export const SHUTDOWN_GRACE_MS = 10_000;

export interface BoardServer {
  /** http://host:port, as a client on this machine reaches it. */
  url: string;
  /** The address the socket is bound to, as the kernel reports it (0.0.0.0: every IPv4 address). */
  address: string;
  port: number;
  deps: BoardDeps;
  sweeper: Sweeper;
  /** The HTTP basic credentials that open Bull Board. */
  credentials: BoardCredentials;
  /** Stops accepting, ends open connections, stops the sweeper, closes the pools. */
  close: () => Promise<void>;
}

/** Starts `cutter board`: the app on BOARD_PORT (or the given port; 0 = any free one) and the release sweeper. */
export async function startBoardServer(args: {
  cfg: Config;
  log: Logger;
  port?: number;
  host?: string;
  /** Defaults to BOARD_USER / BOARD_PASSWORD (see resolveCredentials for when both are missing). */
  credentials?: BoardCredentials;
  options?: Partial<BoardOptions>;
}): Promise<BoardServer> {
  // Checked before any connection opens: a board that must not start opens nothing.
  const bindHost = args.host ?? args.cfg.BOARD_HOST;
  const credentials = resolveCredentials(args.cfg, bindHost, args.credentials);
  const { deps, close: closeDeps } = await createBoardDeps({ ...args, credentials });
  const app = createBoardApp(deps);
  const port = args.port ?? args.cfg.BOARD_PORT;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, bindHost, (err?: Error) => (err ? reject(err) : resolve(s)));
  }).catch(async (err: unknown) => {
    await closeDeps();
    throw err;
  });
  const sweeper = startReleaseSweeper(deps.approvals, deps.options.sweepIntervalMs);
  const { address, port: bound } = server.address() as AddressInfo;
  const everyAddress = address === '0.0.0.0' || address === '::';
  const host = everyAddress ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
  args.log.info({ address, port: bound }, 'board listening');
  return {
    url: `http://${host}:${bound}`,
    address,
    port: bound,
    deps,
    sweeper,
    credentials,
    close: async () => {
      await sweeper.stop();
      // Requests in flight finish (an approval that committed gets its 201), for a bounded time; idle keep-alive connections go now.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      await closeDeps();
    },
  };
}
