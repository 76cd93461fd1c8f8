import { Cluster, Redis } from 'ioredis';
import { isClusterUrl, parseClusterUrl, type RedisClusterTarget } from './redis-url.js';

/** A connection to one Redis or to a Redis Cluster (REDIS_URL decides: shared/redis-url.ts). */
export type RedisClient = Redis | Cluster;

/**
 * How a connection behaves. Workers need maxRetriesPerRequest: null (BullMQ
 * blocks on commands); short-lived producer/CLI connections fail fast
 * instead; `once` makes one bounded attempt and never retries in the
 * background (a command checking that Redis answers, then giving up).
 */
export type RedisKind = 'worker' | 'client' | 'once';

/** Per-node options of each kind; `connectTimeout` overrides the kind's own. */
function nodeOptions(kind: RedisKind, connectTimeout: number | undefined) {
  switch (kind) {
    case 'worker':
      return { maxRetriesPerRequest: null, enableReadyCheck: true, ...(connectTimeout === undefined ? {} : { connectTimeout }) };
    case 'client':
      return { maxRetriesPerRequest: 3, connectTimeout: connectTimeout ?? 5000 };
    case 'once':
      return { maxRetriesPerRequest: 1, connectTimeout: connectTimeout ?? 8000 };
  }
}

function clusterTarget(url: string): RedisClusterTarget {
  const parsed = parseClusterUrl(url);
  // Config validation refuses a malformed cluster URL at start; reaching this is a bug.
  if (!parsed.ok) throw new Error(`REDIS_URL ${parsed.reason}`);
  return parsed.target;
}

/** Opens a connection of this kind to REDIS_URL: a Cluster client for `redis+cluster://`, else one Redis. */
export function createRedis(url: string, kind: RedisKind = 'client', options: { connectTimeout?: number } = {}): RedisClient {
  const perNode = nodeOptions(kind, options.connectTimeout);
  const once = kind === 'once';
  if (!isClusterUrl(url)) return new Redis(url, once ? { ...perNode, lazyConnect: true, retryStrategy: () => null } : perNode);
  const target = clusterTarget(url);
  return new Cluster(target.nodes, {
    lazyConnect: once,
    enableReadyCheck: true,
    // `once`: a cluster that cannot be reached is reported, not retried for ever.
    ...(once ? { clusterRetryStrategy: () => null } : {}),
    redisOptions: {
      ...perNode,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}

/** The nodes whose settings decide durability: the masters of a cluster (each holds some of the data), or the one Redis. */
async function durabilityNodes(redis: RedisClient): Promise<{ name: string; node: Redis }[]> {
  if (!(redis instanceof Cluster)) return [{ name: '', node: redis }];
  // The client knows the masters once it has the slot map, which it has once a command was answered.
  await redis.ping();
  return redis.nodes('master').map((node) => ({ name: `${node.options.host ?? '?'}:${String(node.options.port ?? '?')}`, node }));
}

export interface RedisNodeDurability {
  /** host:port as the cluster announces the node. */
  node: string;
  appendonly: boolean;
  maxmemoryPolicy: string;
  durable: boolean;
}

export interface RedisDurability {
  /** True when every node appends (a cluster: every master). */
  appendonly: boolean;
  /** The policy every node has, or each node's as `host:port=policy` when they differ. */
  maxmemoryPolicy: string;
  /** True when a crash cannot silently lose flows (FIELD-NOTES: AOF + noeviction), on every node. */
  durable: boolean;
  /** A cluster's masters, one by one (absent for one Redis). */
  nodes?: RedisNodeDurability[];
}

async function nodeDurability(name: string, node: Redis): Promise<RedisNodeDurability> {
  const get = async (setting: string): Promise<string> => {
    const reply = (await node.call('CONFIG', 'GET', setting)) as string[];
    return reply[1] ?? '';
  };
  const appendonly = (await get('appendonly')) === 'yes';
  const maxmemoryPolicy = await get('maxmemory-policy');
  return { node: name, appendonly, maxmemoryPolicy, durable: appendonly && maxmemoryPolicy === 'noeviction' };
}

/**
 * Reads the persistence settings that decide whether BullMQ can lose a flow,
 * on every node that holds data: a cluster's slots move between masters
 * (resharding, failover), so one volatile master is a volatile Redis.
 */
export async function redisDurability(redis: RedisClient): Promise<RedisDurability> {
  const nodes = await Promise.all((await durabilityNodes(redis)).map(({ name, node }) => nodeDurability(name, node)));
  if (!(redis instanceof Cluster)) {
    const { appendonly, maxmemoryPolicy, durable } = nodes[0] ?? { appendonly: false, maxmemoryPolicy: '', durable: false };
    return { appendonly, maxmemoryPolicy, durable };
  }
  if (nodes.length === 0) throw new Error('the Redis Cluster reports no master node');
  const policies = new Set(nodes.map((n) => n.maxmemoryPolicy));
  return {
    appendonly: nodes.every((n) => n.appendonly),
    maxmemoryPolicy: policies.size === 1 ? [...policies][0] ?? '' : nodes.map((n) => `${n.node}=${n.maxmemoryPolicy || '(unset)'}`).join(' '),
    durable: nodes.every((n) => n.durable),
    nodes,
  };
}

/** `appendonly=…, maxmemory-policy=…`, naming a cluster's volatile masters: what a refusal or the readiness report says. */
export function describeDurability(d: RedisDurability): string {
  const settings = (n: { appendonly: boolean; maxmemoryPolicy: string }) => `appendonly=${n.appendonly ? 'yes' : 'no'}, maxmemory-policy=${n.maxmemoryPolicy || '(unset)'}`;
  if (d.nodes === undefined) return settings(d);
  const volatile = d.nodes.filter((n) => !n.durable);
  if (volatile.length === 0) return `${settings(d)} on all ${d.nodes.length} masters`;
  return `${volatile.map((n) => `${n.node}: ${settings(n)}`).join('; ')} (${volatile.length} of ${d.nodes.length} masters)`;
}
