import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got, and what it answered. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Epoch ms when it arrived. */
  at: number;
  answered: number | 'no answer';
}

/** How the receiver answers its n-th request (1-based): a status with headers, or never. */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  /** http://127.0.0.1:<port> */
  url: string;
  requests: Received[];
  close: () => Promise<void>;
}

/** A real HTTP receiver on loopback, answering each request as `answer` says. */
export async function startReceiver(answer: (n: number) => Answer): Promise<Receiver> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const a = answer(requests.length + 1);
      requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), answered: a === 'hang' ? 'no answer' : a.status });
      if (a === 'hang') return;
      res.writeHead(a.status, a.headers ?? {});
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A whsec_ secret of 32 random bytes, as Standard Webhooks issues them. */
export function webhookSecret(bytes: Buffer): string {
  return `whsec_${bytes.toString('base64')}`;
}
