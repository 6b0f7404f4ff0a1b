/**
 * `ews-push-bridge doctor` with a `coordinator`: against a real redis-server and EwsSimulator, the
 * coordinator's Redis and lease group are checked — a fresh group passes, workers whose mailbox
 * lists differ from this configuration's warn with the differences, and each failure (Redis
 * unreachable, a refused password, a user without script rights, ioredis missing) fails its own
 * check with a fix and exit code 1, whatever the EWS checks said. One run goes through the command
 * line with `--coordinator`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../cli/config.js';
import { runDoctor, type DoctorCheck, type DoctorReport } from '../cli/doctor.js';
import { RedisLeaseCoordinator } from '../lib/coordination/lease-coordinator.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { spawnCli } from './helpers/cli-process.js';
import { freePort, redisServerMissing, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { until } from './helpers/until.js';

const missing = redisServerMissing();
if (missing !== undefined) console.warn(`cli-doctor-coordinator: ${missing}`);

const PASSWORD = 'doctor-Passw0rd';
const MAILBOXES = ['alice@contoso.com', 'bob@contoso.com'];

describe.skipIf(missing !== undefined)('doctor with a coordinator', () => {
  let dir: string;
  let redis: RedisServer;
  let sim: EwsSimulator;
  let admin: Redis;
  const workers: RedisLeaseCoordinator[] = [];
  const clients: Redis[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ews-doctor-coord-'));
    redis = await startRedisServer();
    admin = redis.client();
    sim = await EwsSimulator.start({ users: { 'CONTOSO\\svc': PASSWORD } });
  });
  afterEach(() => {
    for (const w of workers.splice(0)) w.destroy();
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    admin?.disconnect();
    await sim?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The Redis URL comes from REDIS_URL (`coordinator.urlEnv`: it may hold a password); no section without a prefix. */
  function rawConfig(prefix: string | undefined): Record<string, unknown> {
    return {
      ews: { url: sim.url, auth: { type: 'ntlm', username: 'CONTOSO\\svc', passwordEnv: 'EWS_PASSWORD' } },
      mode: 'streaming',
      mailboxes: MAILBOXES,
      listener: { url: 'http://127.0.0.1:9/listener' },
      ...(prefix === undefined ? {} : { coordinator: { urlEnv: 'REDIS_URL', prefix } }),
    };
  }

  async function doctor(redisUrl: string, prefix: string, extra: Partial<Parameters<typeof runDoctor>[0]> = {}): Promise<{ report: DoctorReport; exitCode: number; out: string }> {
    const env: Record<string, string> = { EWS_PASSWORD: PASSWORD, REDIS_URL: redisUrl };
    const config = resolveConfig(rawConfig(prefix), join(dir, 'bridge.json'), env);
    let out = '';
    const { report, exitCode } = await runDoctor({ config, stdout: { write: (s: string) => (out += s) }, stepTimeoutMs: 5_000, ...extra });
    return { report, exitCode, out };
  }

  const byId = (report: DoctorReport): Record<string, DoctorCheck> => Object.fromEntries(report.checks.map((c) => [c.id, c]));

  it('a fresh lease group: Redis and the group pass after every EWS check, exit 0', async () => {
    const { report, exitCode, out } = await doctor(redis.url, `d${++prefixes}`);
    const checks = byId(report);
    expect(checks['redis']).toMatchObject({ status: 'pass' });
    expect(checks['redis']!.detail).toMatch(/^Redis \d+\.\d+\.\d+ answers \(coordinator\.urlEnv, prefix d1\)$/);
    expect(checks['leases']).toMatchObject({ status: 'pass', detail: 'no live worker yet (this configuration lists 2)' });
    expect(report.checks.at(-1)!.id).toBe('leases');
    expect(exitCode).toBe(0);
    expect(out).toContain('Lease group');
  });

  it('live workers with other mailbox lists: a warning that names the differences (exit 0)', async () => {
    const prefix = `d${++prefixes}`;
    const client = redis.client();
    clients.push(client);
    const worker = new RedisLeaseCoordinator({ redis: client, prefix, resources: ['alice@contoso.com', 'carol@contoso.com'], leaseTtlMs: 2_000, onOwned: () => undefined });
    workers.push(worker);
    await worker.start();
    const { report, exitCode } = await doctor(redis.url, prefix);
    expect(byId(report)['leases']).toMatchObject({
      status: 'warn',
      detail: '1 live worker, 2 mailboxes shared; this configuration lists 2; not listed by any live worker: bob@contoso.com; listed by a live worker but not here: carol@contoso.com',
    });
    expect(byId(report)['leases']!.fix).toMatch(/rolling change/);
    expect(exitCode).toBe(0);
    // The same lists: a pass.
    const same = new RedisLeaseCoordinator({ redis: client, prefix: `${prefix}b`, resources: MAILBOXES, leaseTtlMs: 2_000, onOwned: () => undefined });
    workers.push(same);
    await same.start();
    expect(byId((await doctor(redis.url, `${prefix}b`)).report)['leases']).toMatchObject({ status: 'pass', detail: '1 live worker, 2 mailboxes shared; this configuration lists 2' });
  });

  it('an unreachable Redis fails its check with a fix, and the group check is skipped (exit 1)', async () => {
    const port = await freePort();
    const { report, exitCode } = await doctor(`redis://127.0.0.1:${port}`, `d${++prefixes}`);
    expect(byId(report)['redis']).toMatchObject({ status: 'fail' });
    expect(byId(report)['redis']!.detail).toMatch(/^Cannot reach the coordinator's Redis at redis:\/\/127\.0\.0\.1:\d+ \(coordinator\.urlEnv\)/);
    expect(byId(report)['redis']!.fix).toMatch(/that Redis is running/);
    expect(byId(report)['leases']).toMatchObject({ status: 'skip' });
    expect(byId(report)['auth']).toMatchObject({ status: 'pass' });
    expect(exitCode).toBe(1);
  });

  it('a refused password and a user without script rights fail with what to fix; no secret is shown', async () => {
    await admin.call('ACL', 'SETUSER', 'doctor', 'on', '>right-secret', '~*', '+@all', '-@scripting');
    const wrong = await doctor(`redis://doctor:wrong-secret@127.0.0.1:${redis.port}`, `d${++prefixes}`);
    expect(byId(wrong.report)['redis']).toMatchObject({ status: 'fail' });
    expect(byId(wrong.report)['redis']!.fix).toMatch(/user name and password/);
    expect(wrong.out).not.toContain('wrong-secret');
    const noScripts = await doctor(`redis://doctor:right-secret@127.0.0.1:${redis.port}`, `d${++prefixes}`);
    expect(byId(noScripts.report)['redis']).toMatchObject({ status: 'pass' });
    expect(byId(noScripts.report)['leases']).toMatchObject({ status: 'fail' });
    expect(byId(noScripts.report)['leases']!.fix).toMatch(/^allow this Redis user to run scripts on the coordinator's keys: ACL SETUSER <user> \+@scripting ~d\d+:\*$/);
    expect(noScripts.out).not.toContain('right-secret');
    expect(noScripts.exitCode).toBe(1);
  });

  it('ioredis missing: the check says what to install', async () => {
    const { report } = await doctor(redis.url, `d${++prefixes}`, { importRedis: () => Promise.reject(new Error("Cannot find package 'ioredis'")) });
    expect(byId(report)['redis']).toMatchObject({ status: 'fail', fix: 'npm install ioredis beside ews-push-bridge' });
    expect(byId(report)['redis']!.detail).toMatch(/ioredis/);
  });

  it('a Redis older than 5 fails with the version it found, and the group check is skipped', async () => {
    // A stand-in ioredis that answers INFO as Redis 4 would (no such server is installed here).
    class OldRedis {
      readonly status = 'ready';
      connect(): Promise<void> {
        return Promise.resolve();
      }
      info(): Promise<string> {
        return Promise.resolve('# Server\r\nredis_version:4.0.9\r\nredis_mode:standalone\r\n');
      }
      eval(): Promise<unknown> {
        return Promise.reject(new Error('not expected: the group check must be skipped'));
      }
      evalsha(): Promise<unknown> {
        return this.eval();
      }
      on(): this {
        return this;
      }
      off(): this {
        return this;
      }
      quit(): Promise<string> {
        return Promise.resolve('OK');
      }
      disconnect(): void {}
    }
    const { report, exitCode } = await doctor(redis.url, `d${++prefixes}`, { importRedis: () => Promise.resolve({ Redis: OldRedis }) });
    expect(byId(report)['redis']).toMatchObject({ status: 'fail', detail: `Redis 4.0.9 answers (coordinator.urlEnv, prefix d${prefixes})`, fix: 'the coordinator needs Redis 5 or later' });
    expect(byId(report)['leases']).toMatchObject({ status: 'skip', detail: 'Redis too old' });
    expect(exitCode).toBe(1);
  });

  it('through the command line: doctor --coordinator URL --json', async () => {
    const file = join(dir, 'cli.json');
    writeFileSync(file, JSON.stringify(rawConfig(undefined)));
    const child = spawnCli(['doctor', '--config', file, '--coordinator', redis.url, '--json'], { EWS_PASSWORD: PASSWORD });
    const code = await child.exited(60_000);
    const report = JSON.parse(child.stdout()) as DoctorReport;
    expect(byId(report)['redis'], child.stderr()).toMatchObject({ status: 'pass' });
    expect(byId(report)['leases']).toMatchObject({ status: 'pass' });
    expect(code).toBe(0);
    // Nothing of the doctor is left in Redis: it only read.
    await until(async () => !String(await admin.call('CLIENT', 'LIST')).includes('name=ews-push-bridge-doctor'), 'the doctor’s connection closed');
  }, 90_000);
});
