/**
 * Acceptance (issue 17): bridge worker processes share mailboxes through Redis. Three workers
 * (test/children/lease-worker.ts) consume the mailboxes they own with pull sources against the
 * simulator while numbered mail flows; one is SIGKILLed, a fourth joins, Redis stops answering for
 * a while (SIGSTOP). Checked from what the workers report:
 *
 * - every mailbox is owned by at most one live worker at every moment: per mailbox, the intervals
 *   of successive grants (fencing tokens) are ordered by token and never overlap, and every event
 *   was handled inside its handler's interval;
 * - the killed worker's mailboxes are taken over (new tokens) and resume from their checkpoints;
 * - 0 events lost, nothing invented, duplicates only for events first handled under a lease that
 *   ended by SIGKILL (counted and reported);
 * - during the outage workers keep delivering what they own and claim nothing.
 *
 * Size: `EWS_LEASE_MAILBOXES` (default 60; the full size is 300).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EwsSimulator } from '../lib/testing/index.js';
import type { WorkerConfig } from './children/lease-worker.js';
import { redisServerMissing, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { until } from './helpers/until.js';

const missing = redisServerMissing();
if (missing !== undefined) console.warn(missing);

const root = fileURLToPath(new URL('..', import.meta.url));
const workerScript = join(root, 'test/children/lease-worker.ts');
const MAILBOXES = Number(process.env.EWS_LEASE_MAILBOXES ?? 60);
const TTL_MS = 6_000;
const RENEW_MS = 1_000;
// Shorter than the TTL less the renewal interval and the 10 % margin, so no lease expires.
const OUTAGE_MS = 2_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const hr = (): bigint => process.hrtime.bigint();
const ms = (ns: bigint): number => Number(ns / 1_000_000n);

interface Grant {
  readonly worker: string;
  readonly mailbox: string;
  readonly token: number;
  readonly from: bigint;
  to: bigint | undefined;
  end: string | undefined;
}

interface Handled {
  readonly worker: string;
  readonly mailbox: string;
  readonly token: number;
  readonly seq: number;
  readonly at: bigint;
}

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  joined: boolean;
  killedAt: bigint | undefined;
  stats: { commands: number; ticks: number; claims: number; releases: number; expiries: number } | undefined;
  readonly startedAt: bigint;
  stderr: string;
}

describe.skipIf(missing !== undefined)(`${MAILBOXES} mailboxes shared by worker processes through Redis`, () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let sim: EwsSimulator;
  const workers: Worker[] = [];
  const grants: Grant[] = [];
  const handled: Handled[] = [];
  const failures: string[] = [];

  beforeAll(async () => {
    redisServer = await startRedisServer();
    redis = redisServer.client();
    sim = await EwsSimulator.start();
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    redis?.disconnect();
    await sim?.close();
    await redisServer?.stop();
  });

  function startWorker(name: string, mailboxes: readonly string[]): Worker {
    const config: WorkerConfig = {
      name,
      redisPort: redisServer.port,
      ewsUrl: sim.url,
      prefix: 'mp',
      mailboxes,
      leaseTtlMs: TTL_MS,
      renewIntervalMs: RENEW_MS,
      pollIntervalMs: 200,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(config)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const worker: Worker = {
      name,
      child,
      exited: new Promise((resolve) => child.on('exit', () => resolve())),
      joined: false,
      killedAt: undefined,
      stats: undefined,
      startedAt: hr(),
      stderr: '',
    };
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        onLine(worker, buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (worker.stderr += d));
    workers.push(worker);
    return worker;
  }

  function onLine(worker: Worker, line: string): void {
    const [kind, ...rest] = line.split(' ');
    switch (kind) {
      case 'R':
        worker.joined = true;
        break;
      case 'O':
        grants.push({ worker: worker.name, mailbox: rest[0]!, token: Number(rest[1]), from: BigInt(rest[2]!), to: undefined, end: undefined });
        break;
      case 'L': {
        const grant = grants.find((g) => g.worker === worker.name && g.mailbox === rest[0] && g.token === Number(rest[1]));
        if (grant === undefined) failures.push(`${worker.name} lost ${rest[0]} it never owned`);
        else {
          grant.to = BigInt(rest[3]!);
          grant.end = rest[2];
        }
        break;
      }
      case 'E':
        handled.push({ worker: worker.name, mailbox: rest[0]!, token: Number(rest[1]), seq: Number(rest[2]), at: BigInt(rest[3]!) });
        break;
      case 'X':
        failures.push(`${worker.name}: source of ${rest[0]} (token ${rest[1]}) failed: ${rest[2]}`);
        break;
      case 'S':
        worker.stats = JSON.parse(rest.join(' ')) as Worker['stats'];
        break;
    }
  }

  const phases: string[] = [];
  let phaseStart = hr();
  async function waitFor(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
    try {
      await waitUntil(predicate, what);
    } finally {
      phases.push(`${what} ${ms(hr() - phaseStart)} ms`);
      phaseStart = hr();
    }
  }
  /** {@link until}, failing as soon as a live worker exits; its hang guard sits under the 300 s test timeout. */
  async function waitUntil(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
    await until(predicate, what, {
      intervalMs: 20,
      hangGuardMs: 280_000,
      failWhen: () => {
        const exited = workers.find((w) => w.killedAt === undefined && w.child.exitCode !== null);
        return exited === undefined ? undefined : new Error(`worker ${exited.name} exited: ${exited.stderr}`);
      },
      describe: () => `phases so far: ${phases.join('; ')}`,
    });
  }

  /** Open grants (not ended, worker alive) per mailbox. */
  const current = (): Map<string, Grant[]> => {
    const open = new Map<string, Grant[]>();
    for (const g of grants) {
      if (g.to !== undefined || workers.find((w) => w.name === g.worker)?.killedAt !== undefined) continue;
      open.set(g.mailbox, [...(open.get(g.mailbox) ?? []), g]);
    }
    return open;
  };
  const ownedBy = (name: string): string[] => [...current().values()].flat().filter((g) => g.worker === name).map((g) => g.mailbox);

  it('never two owners, takeover after SIGKILL from checkpoints, a fourth worker takes its share, delivery through a Redis outage, 0 lost', async () => {
    const mailboxes = Array.from({ length: MAILBOXES }, (_, i) => `room${i}@contoso.com`);
    const [w1, w2, w3] = ['w1', 'w2', 'w3'].map((n) => startWorker(n, mailboxes)) as [Worker, Worker, Worker];
    // Mail flows only once every mailbox has a subscription and its starting checkpoint: events
    // made before any subscription existed are nobody's to deliver.
    await waitFor(async () => (await redis.keys('mp:cp:*')).length === MAILBOXES, 'every mailbox checkpointed');
    const ownedAtStart = [w1, w2, w3].map((w) => ownedBy(w.name).length);
    expect(ownedAtStart.reduce((a, b) => a + b)).toBe(MAILBOXES);

    const delivered: Array<{ mailbox: string; seq: number }> = [];
    let producing = true;
    const producer = (async () => {
      let i = 0;
      while (producing) {
        const mailbox = mailboxes[(i++ * 7919) % MAILBOXES]!;
        delivered.push({ mailbox, seq: sim.deliver(mailbox, { type: 'NewMail' }).seq });
        await sleep(4);
      }
    })();
    await waitFor(() => handled.length >= 200, 'mail flowing');

    // SIGKILL w2: its mailboxes go to w1 and w3 with new tokens once its session expires.
    const victims = ownedBy('w2');
    w2.child.kill('SIGKILL');
    await w2.exited;
    w2.killedAt = hr();
    await waitFor(() => victims.every((m) => grants.some((g) => g.mailbox === m && g.worker !== 'w2' && g.from > w2.killedAt!)), 'takeover of w2\u2019s mailboxes');
    const takeoverMs = Math.max(...victims.map((m) => ms(grants.find((g) => g.mailbox === m && g.worker !== 'w2' && g.from > w2.killedAt!)!.from - w2.killedAt!)));
    // …and they resume: each delivers mail again under its new owner.
    const resumeFrom = handled.length;
    await waitFor(() => victims.every((m) => handled.slice(resumeFrom).some((h) => h.mailbox === m && h.worker !== 'w2')), 'taken-over mailboxes delivering');

    // A fourth worker takes a fair share from the busiest, by hand-over.
    const w4 = startWorker('w4', mailboxes);
    const fair = Math.floor(MAILBOXES / 3);
    await waitFor(() => [w1, w3, w4].every((w) => ownedBy(w.name).length >= fair), 'w4 to take its share');

    // Redis stops answering for a while (shorter than a lease): owners keep delivering, nobody claims.
    await waitFor(() => [w1, w3, w4].every((w) => (w.stats?.ticks ?? 0) > 2), 'renewals going');
    const grantsBefore = grants.length;
    const outageFrom = hr();
    redisServer.pause();
    await sleep(OUTAGE_MS);
    const handledInOutage = handled.filter((h) => h.at > outageFrom).length;
    const grantsInOutage = grants.length - grantsBefore;
    redisServer.resume();
    const outageTo = hr();

    // Stop the mail, then wait until every event was handled.
    producing = false;
    await producer;
    const seen = (): Set<string> => new Set(handled.map((h) => `${h.mailbox}#${h.seq}`));
    await waitFor(() => {
      const s = seen();
      return delivered.every((d) => s.has(`${d.mailbox}#${d.seq}`));
    }, 'every event handled');

    // Graceful stop: every lease released after its final checkpoint.
    const live = [w1, w3, w4];
    for (const w of live) w.child.kill('SIGTERM');
    await Promise.all(live.map((w) => w.exited));
    for (const w of workers) expect(w.stderr, w.name).toBe('');
    expect(failures).toEqual([]);

    // Nothing lost, nothing invented.
    const s = seen();
    expect(delivered.filter((d) => !s.has(`${d.mailbox}#${d.seq}`))).toEqual([]);
    const made = new Set(delivered.map((d) => `${d.mailbox}#${d.seq}`));
    expect(handled.filter((h) => !made.has(`${h.mailbox}#${h.seq}`))).toEqual([]);

    // Ownership: per mailbox, grants in token order, each ending before the next begins.
    for (const g of grants) {
      const w = workers.find((x) => x.name === g.worker)!;
      if (g.to === undefined && w.killedAt !== undefined) {
        g.to = w.killedAt;
        g.end = 'killed';
      }
      expect(g.to, `${g.worker} ${g.mailbox} token ${g.token} never ended`).toBeDefined();
    }
    for (const mailbox of mailboxes) {
      const chain = grants.filter((g) => g.mailbox === mailbox).sort((a, b) => a.token - b.token);
      for (let i = 1; i < chain.length; i++) {
        const [prev, next] = [chain[i - 1]!, chain[i]!];
        expect(next.token, mailbox).toBeGreaterThan(prev.token);
        expect(next.from >= prev.to!, `${mailbox}: token ${next.token} (${next.worker}) began before token ${prev.token} (${prev.worker}) ended`).toBe(true);
      }
    }
    // Every event was handled by the owner of its mailbox, inside its grant.
    for (const h of handled) {
      const g = grants.find((x) => x.worker === h.worker && x.mailbox === h.mailbox && x.token === h.token);
      expect(g !== undefined && h.at >= g.from && h.at <= g.to!, `event ${h.mailbox}#${h.seq} by ${h.worker} outside its grant`).toBe(true);
    }

    // Duplicates only at takeovers: a repeated event was first handled under a grant SIGKILL ended.
    const firstBy = new Map<string, Handled>();
    let duplicates = 0;
    for (const h of [...handled].sort((a, b) => (a.at < b.at ? -1 : 1))) {
      const key = `${h.mailbox}#${h.seq}`;
      const first = firstBy.get(key);
      if (first === undefined) {
        firstBy.set(key, h);
        continue;
      }
      duplicates++;
      const ended = grants.find((g) => g.worker === first.worker && g.mailbox === first.mailbox && g.token === first.token)?.end;
      expect(ended, `${key} handled again after a grant that ended by ${ended}`).toBe('killed');
    }

    // During the outage: delivery went on and nobody claimed anything.
    expect(handledInOutage).toBeGreaterThan(0);
    expect(grantsInOutage).toBe(0);
    expect(grants.filter((g) => g.end === 'expired')).toEqual([]);

    // Workers that start apart (tsx start-up on a busy machine) also hand mailboxes over to each other.
    const rebalanced = grants.filter((g) => g.end === 'rebalance').length;
    const toFourth = grants.filter((g) => g.end === 'rebalance' && g.to! > w4.startedAt).length;
    const closing = grants.filter((g) => g.end === 'closing').length;
    expect(closing).toBe(MAILBOXES);
    const runSeconds = ms(outageTo - w1.startedAt) / 1000;
    // Redis commands of the coordinator per renewal (≈ 1: the renew-and-balance script, plus
    // joins, registrations, releases), and so per second at one renewal per RENEW_MS.
    const commandsPerSecond = live.map((w) => (((w.stats?.commands ?? 0) / Math.max(1, w.stats?.ticks ?? 0)) * (1000 / RENEW_MS)).toFixed(2));
    console.info(
      `lease multi-process (${MAILBOXES} mailboxes, TTL ${TTL_MS} ms, renewal ${RENEW_MS} ms): ` +
        `${delivered.length} events, 0 lost, ${duplicates} duplicates (all after the SIGKILL); ` +
        `takeover of ${victims.length} mailboxes ${takeoverMs} ms after the kill (2×TTL = ${2 * TTL_MS} ms); ` +
        `${rebalanced} hand-overs (${toFourth} after the fourth worker started), 0 duplicates from them; ${handledInOutage} events handled during a ${OUTAGE_MS} ms Redis outage, ` +
        `${grantsInOutage} grants during it; lease commands/s per worker ${commandsPerSecond.join(', ')} over ~${runSeconds.toFixed(0)} s`,
    );
    console.info(`phases: ${phases.join('; ')}`);
  }, 300_000);
});
