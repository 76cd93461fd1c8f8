import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startReleaseSweeper, type Sweeper } from '../shared/approval/sweeper.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createBoardApp } from './app.js';
import { resolveCredentials, type BoardCredentials } from './auth.js';
import { createBoardDeps, type BoardDeps, type BoardOptions } from './deps.js';

export interface BoardServer {
  /** http://host:port, as a client on this machine reaches it. */
  url: string;
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
  const credentials = resolveCredentials(args.cfg, args.host ?? '0.0.0.0', args.credentials);
  const { deps, close: closeDeps } = await createBoardDeps({ ...args, credentials });
  const app = createBoardApp(deps);
  const port = args.port ?? args.cfg.BOARD_PORT;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, args.host ?? '0.0.0.0', (err?: Error) => (err ? reject(err) : resolve(s)));
  }).catch(async (err: unknown) => {
    await closeDeps();
    throw err;
  });
  const sweeper = startReleaseSweeper(deps.approvals, deps.options.sweepIntervalMs);
  const bound = (server.address() as AddressInfo).port;
  const host = args.host && args.host !== '0.0.0.0' ? args.host : '127.0.0.1';
  args.log.info({ port: bound }, 'board listening');
  return {
    url: `http://${host}:${bound}`,
    port: bound,
    deps,
    sweeper,
    credentials,
    close: async () => {
      await sweeper.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await closeDeps();
    },
  };
}
