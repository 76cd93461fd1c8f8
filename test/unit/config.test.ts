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

  it('has no test switches: CUTTER_FAULT and CUTTER_TEST_DISABLE_LEDGER are read by the crash tests\' preload only', () => {
    const cfg = parseConfig({ CUTTER_OPERATOR: 'alice', CUTTER_FAULT: 'execute.middle', CUTTER_TEST_DISABLE_LEDGER: 'true' });
    expect(Object.keys(cfg).filter((k) => k.startsWith('CUTTER_FAULT') || k.startsWith('CUTTER_TEST_'))).toEqual([]);
    expect(cfg).toEqual(parseConfig({ CUTTER_OPERATOR: 'alice' }));
  });
});
