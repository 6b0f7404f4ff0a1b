/**
 * The `coordinator` section of the `forward` configuration and `--coordinator` (issue 17): every
 * wrong field named on its own line with the value where it cannot be a secret, a Redis URL with a
 * password refused in the file (it belongs in the variable `urlEnv` names) and never echoed, the
 * checkpoint file refused beside a coordinator, and ioredis missing reported as EWS_PEER_MISSING.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../cli/config.js';
import { CliError } from '../cli/exit-codes.js';
import { loadIoredis } from '../cli/redis-peer.js';
import { EwsPeerMissingError } from '../lib/entry-errors.js';

const SECRET = 'Winter2026!not-for-logs';
const REDIS_SECRET = 'redis-Pa55-not-for-logs';
const PATH = join('/etc/ews-push-bridge', 'bridge.json');

function valid(coordinator: Record<string, unknown> | null = { url: 'redis://redis.contoso.local:6379' }): Record<string, unknown> {
  return {
    ews: { url: 'https://mail.contoso.com/EWS/Exchange.asmx', auth: { type: 'basic', username: 'svc@contoso.com', passwordEnv: 'EWS_PASSWORD' } },
    mode: 'hybrid',
    mailboxes: ['alice@contoso.com', 'bob@contoso.com'],
    listener: { url: 'http://crm.local/Listener.asmx' },
    ...(coordinator === null ? {} : { coordinator }),
  };
}

function problems(raw: unknown, env: Record<string, string> = {}, coordinatorUrl?: string): string[] {
  try {
    resolveConfig(raw, PATH, { EWS_PASSWORD: SECRET, ...env }, { coordinatorUrl });
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).not.toContain(SECRET);
    expect((error as CliError).message).not.toContain(REDIS_SECRET);
    return (error as CliError).message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
  }
}

describe('forward configuration: coordinator', () => {
  it('applies the defaults: prefix ews-bridge, a 15 s lease renewed every 5 s', () => {
    const config = resolveConfig(valid(), PATH, { EWS_PASSWORD: SECRET });
    expect(config.coordinator).toEqual({
      url: 'redis://redis.contoso.local:6379',
      urlField: 'coordinator.url',
      prefix: 'ews-bridge',
      leaseTtlMs: 15_000,
      renewIntervalMs: 5_000,
      workerName: undefined,
    });
    expect(resolveConfig(valid(null), PATH, { EWS_PASSWORD: SECRET }).coordinator).toBeUndefined();
  });

  it('reads a password-bearing URL from the variable urlEnv names', () => {
    const url = `redis://:${REDIS_SECRET}@redis.contoso.local:6380/2`;
    const config = resolveConfig(valid({ urlEnv: 'BRIDGE_REDIS_URL', leaseTtlSeconds: 30, renewIntervalSeconds: 2.5, workerName: 'node-a', prefix: '{bridge}' }), PATH, {
      EWS_PASSWORD: SECRET,
      BRIDGE_REDIS_URL: url,
    });
    expect(config.coordinator).toEqual({ url, urlField: 'coordinator.urlEnv', prefix: '{bridge}', leaseTtlMs: 30_000, renewIntervalMs: 2_500, workerName: 'node-a' });
  });

  it('--coordinator replaces the file’s URL, or adds the section with its defaults', () => {
    const fromFlag = resolveConfig(valid({ urlEnv: 'UNSET_VARIABLE', leaseTtlSeconds: 9 }), PATH, { EWS_PASSWORD: SECRET }, { coordinatorUrl: 'rediss://cache.contoso.local:6380' });
    expect(fromFlag.coordinator).toMatchObject({ url: 'rediss://cache.contoso.local:6380', urlField: '--coordinator', leaseTtlMs: 9_000, renewIntervalMs: 3_000 });
    const added = resolveConfig(valid(null), PATH, { EWS_PASSWORD: SECRET }, { coordinatorUrl: 'redis://127.0.0.1:6379' });
    expect(added.coordinator).toMatchObject({ url: 'redis://127.0.0.1:6379', prefix: 'ews-bridge', leaseTtlMs: 15_000 });
  });

  it('names each wrong coordinator field, all at once', () => {
    expect(problems(valid({ url: 'http://redis.contoso.local:6379', leaseTtlSeconds: 0.5, prefix: '', workerName: '' }))).toEqual([
      'coordinator.url: must be a redis:// or rediss:// URL, e.g. redis://redis.contoso.local:6379',
      'coordinator.prefix: must not be empty',
      'coordinator.leaseTtlSeconds: must be 1–3600 seconds',
      'coordinator.workerName: must not be empty',
    ]);
    expect(problems(valid({ prefix: 'x' }))).toEqual(['coordinator.url: is required (or urlEnv)']);
    expect(problems(valid({ url: 'redis://h:6379', urlEnv: 'REDIS_URL' }))).toEqual(['coordinator.urlEnv: give either url or urlEnv, not both']);
    expect(problems(valid({ url: 'redis://h:6379', leaseTTLSeconds: 10 }))).toEqual([
      'coordinator.leaseTTLSeconds: unknown field — did you mean "leaseTtlSeconds"? (every field: docs/configuration.md)',
    ]);
    expect(problems(valid({ url: 'redis://h:6379', leaseTtlSeconds: 10, renewIntervalSeconds: 6 }))).toEqual([
      'coordinator.renewIntervalSeconds: must be at most half of coordinator.leaseTtlSeconds (got 6 with a lease of 10 s)',
    ]);
    const typo = valid();
    typo['coordinater'] = typo['coordinator'];
    delete typo['coordinator'];
    expect(problems(typo)).toEqual(['coordinater: unknown field — did you mean "coordinator"? (every field: docs/configuration.md)']);
  });

  it('refuses a password in the file or on the command line, without echoing it', () => {
    expect(problems(valid({ url: `redis://:${REDIS_SECRET}@redis.contoso.local:6379` }))).toEqual([
      'coordinator.url: must not hold a password: put the whole URL in an environment variable and name it in coordinator.urlEnv',
    ]);
    expect(problems(valid(), {}, `redis://default:${REDIS_SECRET}@redis.contoso.local:6379`)).toEqual([
      '--coordinator: must not hold a password: put the whole URL in an environment variable and name it in coordinator.urlEnv (got "redis://redis.contoso.local:6379")',
    ]);
    expect(problems(valid(), {}, 'localhost:6379')[0]).toMatch(/^--coordinator: must be a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('checks the variable urlEnv names without echoing its value', () => {
    expect(problems(valid({ urlEnv: 'BRIDGE_REDIS_URL' }))).toEqual(['coordinator.urlEnv: the environment variable BRIDGE_REDIS_URL is not set (or is empty)']);
    expect(problems(valid({ urlEnv: 'BRIDGE_REDIS_URL' }), { BRIDGE_REDIS_URL: `http://${REDIS_SECRET}@x` })).toEqual([
      'coordinator.urlEnv: the environment variable BRIDGE_REDIS_URL must hold a redis:// or rediss:// URL, e.g. redis://redis.contoso.local:6379',
    ]);
  });

  it('refuses checkpoint.file beside a coordinator (checkpoints go to Redis), and a coordinator without mailboxes', () => {
    const raw = { ...valid(), checkpoint: { file: 'state/checkpoints.json' } };
    expect(problems(raw)).toEqual([
      'checkpoint.file: cannot be used with coordinator (got "state/checkpoints.json"): the workers keep their checkpoints in Redis, fenced by their leases; remove checkpoint.file (or coordinator)',
    ]);
    expect(problems(valid(null), {}, 'redis://127.0.0.1:6379')).toEqual([]);
    expect(problems({ ...valid(null), checkpoint: { file: 'cp.json' } }, {}, 'redis://127.0.0.1:6379')).toEqual([
      'checkpoint.file: cannot be used with --coordinator (got "cp.json"): the workers keep their checkpoints in Redis, fenced by their leases; remove checkpoint.file (or --coordinator)',
    ]);
    const own = valid();
    delete own['mailboxes'];
    expect(problems(own)).toEqual(['mailboxes: is required with coordinator: the workers share the listed mailboxes (the account’s own cannot be leased)']);
  });

  it('reports ioredis missing as EWS_PEER_MISSING naming the package', async () => {
    const notFound = Object.assign(new Error("Cannot find package 'ioredis' imported from /srv/app/node_modules/ews-push-bridge/dist/cli.cjs"), { code: 'ERR_MODULE_NOT_FOUND' });
    const error = await loadIoredis(() => Promise.reject(notFound)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsPeerMissingError);
    expect(error).toMatchObject({ code: 'EWS_PEER_MISSING', packageName: 'ioredis', retriable: false });
    expect((error as Error).message).toContain('npm install ioredis');
    expect((error as Error).message).toContain("Cannot find package 'ioredis'");
    expect(await loadIoredis()).toBeTypeOf('function');
  });
});

describe('examples/bridge-workers.json', () => {
  it('is a valid coordinated configuration', async () => {
    const { loadConfig } = await import('../cli/config.js');
    const { ROOT } = await import('./helpers/cli-process.js');
    const config = await loadConfig(join(ROOT, 'examples/bridge-workers.json'), { EWS_PASSWORD: SECRET, BRIDGE_REDIS_URL: `redis://:${REDIS_SECRET}@redis.contoso.local:6379` });
    expect(config.coordinator).toMatchObject({ urlField: 'coordinator.urlEnv', prefix: 'ews-bridge', leaseTtlMs: 15_000, renewIntervalMs: 5_000 });
    expect(config.checkpointFile).toBeUndefined();
  });
});
