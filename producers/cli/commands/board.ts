import type { Command } from 'commander';
import { generateCredentials, isLoopback, missingCredentials, type BoardCredentials } from '../../../board/auth.js';
import { startBoardServer } from '../../../board/server.js';
import { CutterError } from '../../../shared/errors.js';
import { logger } from '../../../shared/logger.js';
import type { CliContext } from '../context.js';
import { wholeNumber } from '../options.js';

/** `cutter board`: serve the HTTP API on BOARD_PORT until SIGTERM/SIGINT, then close cleanly. */
export function registerBoardCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('board')
    .description('start the HTTP server: Bull Board (read-only), run pages, approval endpoint, /healthz, /metrics')
    .option('--port <port>', 'listen here instead of BOARD_PORT (0 = any free port)', wholeNumber(0, 65535))
    .option('--host <host>', 'the address to bind instead of BOARD_HOST (default 127.0.0.1; 0.0.0.0 exposes it on every address)')
    .option('--demo', 'bind to 127.0.0.1 and print generated Bull Board credentials (no BOARD_USER/BOARD_PASSWORD needed)')
    .action(async (opts: { port?: number; host?: string; demo?: boolean }) => {
      const log = logger();
      const cfg = ctx().cfg;
      const port = opts.port;
      const host = opts.host ?? (opts.demo ? '127.0.0.1' : cfg.BOARD_HOST);
      let credentials: BoardCredentials;
      if (opts.demo) {
        // Generated credentials are only acceptable where no one else can connect.
        if (!isLoopback(host)) throw new CutterError('BOARD_DEMO_NOT_LOOPBACK', '--demo binds to 127.0.0.1 only; drop --host', { kind: 'bad_input' });
        credentials = generateCredentials();
      } else if (cfg.BOARD_USER && cfg.BOARD_PASSWORD) {
        credentials = { user: cfg.BOARD_USER, password: cfg.BOARD_PASSWORD };
      } else {
        throw missingCredentials();
      }
      const server = await startBoardServer({ cfg, log, host, credentials, ...(port === undefined ? {} : { port }) });
      const every = server.address === '0.0.0.0' || server.address === '::';
      process.stdout.write(`board listening on ${server.url}${every ? ` (bound to ${server.address}: every address of this machine)` : ''}\n`);
      process.stdout.write(`Bull Board: ${server.url}/admin/queues · runs: ${server.url}/runs\n`);
      if (opts.demo) process.stdout.write(`demo credentials (this process only): user ${credentials.user} password ${credentials.password}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await server.close();
    });
}
