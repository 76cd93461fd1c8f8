/**
 * The two forms of REDIS_URL: one Redis (`redis://`, `rediss://`, as ioredis
 * reads them) or a Redis Cluster, `redis+cluster://[user[:password]@]host:port,host:port,…`
 * (`rediss+cluster://` for TLS). The cluster form lists seed nodes; the
 * client learns the rest of the cluster from any one of them. It is not a
 * WHATWG URL (a list of hosts), so it is read here, by hand, once.
 */

export interface RedisNodeAddress {
  host: string;
  port: number;
}

export interface RedisClusterTarget {
  nodes: RedisNodeAddress[];
  username: string | undefined;
  password: string | undefined;
  tls: boolean;
}

const CLUSTER_SCHEMES: Record<string, boolean> = { 'redis+cluster://': false, 'rediss+cluster://': true };

/** The form a cluster REDIS_URL must have, as error messages spell it. */
export const CLUSTER_URL_FORM = 'redis+cluster://host:port,host:port,… (rediss+cluster:// for TLS)';

/** True when the URL names a Redis Cluster (its scheme says so; it may still be malformed). */
export function isClusterUrl(url: string): boolean {
  return Object.keys(CLUSTER_SCHEMES).some((scheme) => url.toLowerCase().startsWith(scheme));
}

// A host name, an IPv4 address, or an IPv6 address in brackets; then an optional port.
const NODE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::(\d{1,5}))?$/;

function decode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** The cluster a `redis+cluster://` URL names, or why it names none (never echoing the password). */
export function parseClusterUrl(url: string): { ok: true; target: RedisClusterTarget } | { ok: false; reason: string } {
  const scheme = Object.keys(CLUSTER_SCHEMES).find((s) => url.toLowerCase().startsWith(s));
  if (scheme === undefined) return { ok: false, reason: `does not start with ${Object.keys(CLUSTER_SCHEMES).join(' or ')}` };
  let rest = url.slice(scheme.length);
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    const user = decode(colon < 0 ? auth : auth.slice(0, colon));
    const pass = colon < 0 ? '' : decode(auth.slice(colon + 1));
    if (user === null || pass === null) return { ok: false, reason: 'has a badly escaped user or password' };
    username = user === '' ? undefined : user;
    password = pass === '' ? undefined : pass;
  }
  // A cluster has database 0 only, so there is no path to name another.
  if (/[/?#]/.test(rest.replace(/\/$/, ''))) return { ok: false, reason: 'has a path, query or fragment (a Redis Cluster has database 0 only)' };
  const entries = rest.replace(/\/$/, '').split(',').map((e) => e.trim());
  const nodes: RedisNodeAddress[] = [];
  for (const [i, entry] of entries.entries()) {
    const m = NODE.exec(entry);
    const port = Number(m?.[5] ?? 6379);
    if (!m?.[1] || port < 1 || port > 65535) return { ok: false, reason: `entry ${i + 1} is not host:port` };
    nodes.push({ host: m[1].replace(/^\[|\]$/g, ''), port });
  }
  return { ok: true, target: { nodes, username, password, tls: CLUSTER_SCHEMES[scheme] ?? false } };
}
