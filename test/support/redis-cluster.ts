import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from './poll.js';
import { freePort, startPrivateRedis, type PrivateRedis } from './redis-server.js';

const run = promisify(execFile);

/** A Redis Cluster of its own on loopback, as a user would build one. */
export interface PrivateRedisCluster {
  /** REDIS_URL for it: redis+cluster:// with every node as a seed. */
  url: string;
  nodes: PrivateRedis[];
  /** The node (host:port) that holds this key's hash slot, as the cluster says (CLUSTER KEYSLOT, CLUSTER SLOTS). */
  ownerOf: (key: string) => Promise<string>;
  /** A client of one node, for CONFIG SET on it; the caller disconnects it. */
  node: (port: number) => Redis;
  /** SIGTERM every node (by pid) and remove their directories. */
  stop: () => Promise<void>;
}

/**
 * Starts `size` redis-server processes with cluster-enabled yes (each with
 * its own free port and cluster bus port, its own directory, AOF on,
 * noeviction), joins them with `redis-cli --cluster create` (no replicas),
 * and waits until every node says cluster_state:ok.
 */
export async function startRedisCluster(size = 3): Promise<PrivateRedisCluster> {
  const nodes: PrivateRedis[] = [];
  const stop = async () => {
    for (const n of nodes) await n.stop();
  };
  try {
    for (let i = 0; i < size; i += 1) {
      // The bus port is named: the default (port + 10000) may be past 65535 for a kernel-chosen port.
      const busPort = await freePort();
      nodes.push(await startPrivateRedis({
        appendOnly: true,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', '5000'],
      }));
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
    const node = (port: number) => new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
    for (const n of nodes) {
      const client = node(n.port);
      try {
        await waitFor(`cluster node ${n.port} to say cluster_state:ok`, async () => {
          const info = (await client.call('CLUSTER', 'INFO')) as string;
          return /cluster_state:ok/.test(info) ? true : undefined;
        }, { deadlineMs: 30_000, stepMs: 100 });
      } finally {
        client.disconnect();
      }
    }
    const first = nodes[0];
    if (!first) throw new Error('a cluster needs nodes');
    return {
      url: `redis+cluster://${addresses.join(',')}`,
      nodes,
      node,
      ownerOf: async (key) => {
        const client = node(first.port);
        try {
          const slot = (await client.call('CLUSTER', 'KEYSLOT', key)) as number;
          const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
          const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
          if (!owner) throw new Error(`no node holds slot ${slot}`);
          return `${owner[0]}:${owner[1]}`;
        } finally {
          client.disconnect();
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
