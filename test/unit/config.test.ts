import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { configRefusal } from '../support/config.js';

const failure = configRefusal;

describe('configuration', () => {
  it('applies the DESIGN §6 defaults to an empty environment', () => {
    const cfg = parseConfig({ CUTTER_OPERATOR: 'alice' });
    expect(cfg.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(cfg.DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:5432/cutter');
    expect(cfg.CUTTER_QUEUE_PREFIX).toBe('cutter');
    expect(cfg.SOVEREIGN_QUORUM).toBe(1);
    expect(cfg.CUTTER_EXEC_ROLE).toBe('cutter_exec');
    expect(cfg.BOARD_PORT).toBe(3000);
    expect(cfg.CUTTER_API_URL).toBe('http://127.0.0.1:3000');
    expect(cfg.CUTTER_ALLOW_VOLATILE_REDIS).toBe(false);
    expect(cfg.CUTTER_OPERATOR).toBe('alice');
  });

  it('names the variable and the expected form for a bad value', () => {
    const err = failure({ REDIS_URL: 'nope' });
    expect(err.variable).toBe('REDIS_URL');
    expect(err.message).toMatch(/^REDIS_URL must be a URL of the form redis:\/\//);
    expect(failure({ DATABASE_URL: 'mysql://x/y' }).variable).toBe('DATABASE_URL');
    expect(failure({ DATABASE_URL: 'postgres://127.0.0.1:5432' }).message).toMatch(/must name a database/);
    expect(failure({ BOARD_PORT: '70000' }).message).toBe('BOARD_PORT must be a port number 1-65535');
    expect(failure({ SOVEREIGN_QUORUM: '0' }).variable).toBe('SOVEREIGN_QUORUM');
    expect(failure({ BACKUP_GPG_FPR: 'ABC' }).message).toMatch(/40-hex-digit/);
    expect(failure({ CUTTER_EXEC_ROLE: 'Robert"; DROP' }).variable).toBe('CUTTER_EXEC_ROLE');
    expect(failure({ CUTTER_QUEUE_PREFIX: 'a:b' }).variable).toBe('CUTTER_QUEUE_PREFIX');
  });

  it('parses booleans strictly: "false" is false and "yes" is an error', () => {
    expect(parseConfig({ CUTTER_ALLOW_VOLATILE_REDIS: 'false' }).CUTTER_ALLOW_VOLATILE_REDIS).toBe(false);
    expect(parseConfig({ CUTTER_ALLOW_VOLATILE_REDIS: '0' }).CUTTER_ALLOW_VOLATILE_REDIS).toBe(false);
    expect(parseConfig({ CUTTER_ALLOW_VOLATILE_REDIS: 'true' }).CUTTER_ALLOW_VOLATILE_REDIS).toBe(true);
    expect(failure({ CUTTER_ALLOW_VOLATILE_REDIS: 'yes' }).variable).toBe('CUTTER_ALLOW_VOLATILE_REDIS');
  });

  it('accepts a hash-tagged prefix for Redis Cluster and normalises a fingerprint', () => {
    const cfg = parseConfig({ CUTTER_QUEUE_PREFIX: '{cutter}', BACKUP_GPG_FPR: 'ab'.repeat(20) });
    expect(cfg.CUTTER_QUEUE_PREFIX).toBe('{cutter}');
    expect(cfg.BACKUP_GPG_FPR).toBe('AB'.repeat(20));
  });

  it('reads a Redis Cluster from REDIS_URL=redis+cluster://… and refuses it with a prefix that is not a hash tag', () => {
    const cfg = parseConfig({ REDIS_URL: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000,[::1]:7001', CUTTER_QUEUE_PREFIX: '{cutter}' });
    expect(cfg.REDIS_URL).toBe('redis+cluster://10.0.0.1:7000,10.0.0.2:7000,[::1]:7001');
    expect(parseConfig({ REDIS_URL: 'rediss+cluster://cutter:s3cret@redis-a.internal:6380', CUTTER_QUEUE_PREFIX: '{ops}' }).CUTTER_QUEUE_PREFIX).toBe('{ops}');

    const plain = failure({ REDIS_URL: 'redis+cluster://10.0.0.1:7000' });
    expect(plain.code).toBe('CONFIG_INVALID');
    expect(plain.variable).toBe('CUTTER_QUEUE_PREFIX');
    expect(plain.message).toBe(
      'CUTTER_QUEUE_PREFIX must be a hash tag such as {cutter} when REDIS_URL names a Redis Cluster: every key of every phase queue must hash to one slot, as a run\'s flow spans the queues',
    );
    expect(failure({ REDIS_URL: 'redis+cluster://10.0.0.1:7000', CUTTER_QUEUE_PREFIX: 'ops' }).message).toMatch(/^CUTTER_QUEUE_PREFIX must be a hash tag such as \{ops\} /);

    for (const bad of ['redis+cluster://', 'redis+cluster://a:7000,,b:7000', 'redis+cluster://a:99999', 'redis+cluster://a:7000/1', 'redis+cluster://a b:7000']) {
      const err = failure({ REDIS_URL: bad, CUTTER_QUEUE_PREFIX: '{cutter}' });
      expect(err.variable, bad).toBe('REDIS_URL');
      expect(err.message, bad).toMatch(/^REDIS_URL must be of the form redis\+cluster:\/\/host:port,host:port,… \(rediss\+cluster:\/\/ for TLS\) for a Redis Cluster: it /);
    }
    // A password never appears in the refusal.
    expect(failure({ REDIS_URL: 'redis+cluster://u:hunter2@a:7000/0', CUTTER_QUEUE_PREFIX: '{cutter}' }).message).not.toContain('hunter2');
  });

  it('has no test switches: CUTTER_FAULT and CUTTER_TEST_DISABLE_LEDGER are read by the crash tests\' preload only', () => {
    const cfg = parseConfig({ CUTTER_OPERATOR: 'alice', CUTTER_FAULT: 'execute.middle', CUTTER_TEST_DISABLE_LEDGER: 'true' });
    expect(Object.keys(cfg).filter((k) => k.startsWith('CUTTER_FAULT') || k.startsWith('CUTTER_TEST_'))).toEqual([]);
    expect(cfg).toEqual(parseConfig({ CUTTER_OPERATOR: 'alice' }));
  });
});
