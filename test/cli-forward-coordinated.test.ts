/**
 * `ews-push-bridge forward` with a coordinator (issue 17, CLI part): real `forward` processes on
 * ONE configuration, a real redis-server (test/helpers/redis-server.ts), the simulator and a
 * legacy listener in this process, pull mode (watermarks: the no-loss check needs them).
 *
 * - two workers split the mailboxes; each mailbox is delivered only by the worker holding its lease;
 * - SIGTERM one: it unsubscribes, writes its last checkpoints, releases its leases; the other takes
 *   them on its next renewal and nothing is lost;
 * - SIGKILL one: the other takes its mailboxes once the lease expired, from the checkpoints, and
 *   nothing is lost (duplicates allowed, counted); in streaming mode too, where the new holder
 *   recovers with SyncFolderItems, from the sync states in the fenced Redis store, what arrived
 *   while nobody held the mailbox;
 * - Redis down at start, a bad --coordinator: the documented exit codes and messages.
 *
 * No wall-clock bound is asserted; the measured takeover times are printed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisCheckpointStore } from '../lib/entry-redis.js';
import { checkpointKey, EVENT_TYPES } from '../lib/index.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { receivedSequences, startCaptureListener, type CaptureListener } from './helpers/capture-listener.js';
import { killAll, spawnCli, type CliChild } from './helpers/cli-process.js';
import { freePort, redisServerMissing, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { until } from './helpers/until.js';

/** until() every 20 ms (some predicates scrape the workers' metrics over HTTP), with the 60 s hang guard this file always had (its tests allow 180 s). */
const SCRAPE_POLL = { intervalMs: 20, hangGuardMs: 60_000 };

const missing = redisServerMissing();
if (missing !== undefined) console.warn(missing);

const USER = 'svc-bridge@contoso.com';
const PASSWORD = 'coordinated-Pa55word';
const MAILBOXES = Array.from({ length: 6 }, (_, i) => `room${i}@contoso.com`);
const TTL_SECONDS = 3;
const RENEW_SECONDS = 0.5;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Env {
  readonly redisServer: RedisServer;
  readonly redis: Redis;
  readonly sim: EwsSimulator;
  readonly listener: CaptureListener;
  readonly file: string;
  readonly prefix: string;
}

async function setUp(mode: 'pull' | 'hybrid' | 'streaming' = 'pull', metrics: { readonly unhealthyAfterSeconds?: number } = {}): Promise<Env> {
  const redisServer = await startRedisServer();
  cleanups.push(() => redisServer.stop());
  const redis = redisServer.client();
  cleanups.push(() => redis.disconnect());
  const sim = await EwsSimulator.start({ users: { [USER]: PASSWORD } });
  cleanups.push(() => sim.close());
  const listener = await startCaptureListener();
  cleanups.push(() => listener.close());
  const dir = mkdtempSync(join(tmpdir(), 'ews-cli-coordinated-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = 'fwd-test';
  const file = join(dir, 'bridge.json');
  writeFileSync(
    file,
    JSON.stringify({
      ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
      mode,
      mailboxes: MAILBOXES,
      pollIntervalSeconds: 1,
      listener: { url: listener.url, statusFrequencyMinutes: 1 },
      coordinator: { urlEnv: 'BRIDGE_TEST_REDIS_URL', prefix, leaseTtlSeconds: TTL_SECONDS, renewIntervalSeconds: RENEW_SECONDS },
      metrics: { port: 0, ...metrics },
      log: { level: 'info', format: 'json' },
    }),
  );
  return { redisServer, redis, sim, listener, file, prefix };
}

/** A forward worker and what its JSON log lines said. */
interface Worker {
  readonly child: CliChild;
  readonly metricsUrl: string;
  /** mailbox → token, for the leases it holds now. */
  held(): Map<string, number>;
  /** Every grant, in order, with the time this process saw the line. */
  grants(): { mailbox: string; token: number; at: number }[];
}

function logLines(child: CliChild): Record<string, unknown>[] {
  return child
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function startWorker(env: Env, file = env.file): Promise<Worker> {
  const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: PASSWORD, BRIDGE_TEST_REDIS_URL: env.redisServer.url });
  const seenAt = new Map<string, number>();
  const stamp = (): void => {
    for (const line of logLines(child)) {
      if (line['message'] === 'lease granted: forwarding the mailbox') {
        const key = `${String(line['mailbox'])}#${String(line['token'])}`;
        if (!seenAt.has(key)) seenAt.set(key, Date.now());
      }
    }
  };
  child.process.stderr?.on('data', stamp);
  const [, metricsUrl] = await child.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/, 60_000);
  return {
    child,
    metricsUrl: metricsUrl!,
    held: () => {
      const out = new Map<string, number>();
      for (const line of logLines(child)) {
        const mailbox = String(line['mailbox']);
        if (line['message'] === 'lease granted: forwarding the mailbox') out.set(mailbox, Number(line['token']));
        if (line['message'] === 'lease lost: stopping the mailbox' && out.get(mailbox) === Number(line['token'])) out.delete(mailbox);
      }
      return out;
    },
    grants: () =>
      logLines(child)
        .filter((l) => l['message'] === 'lease granted: forwarding the mailbox')
        .map((l) => {
          const mailbox = String(l['mailbox']);
          const token = Number(l['token']);
          return { mailbox, token, at: seenAt.get(`${mailbox}#${token}`) ?? Date.now() };
        }),
  };
}

/** Watermarks of every (non-Status) event the listener accepted, with repeats. */
function receivedWatermarks(listener: CaptureListener): string[] {
  const out: string[] = [];
  for (const post of listener.posts) {
    const body = parseEnvelope(post.body).body;
    if (body.type !== 'response') continue;
    for (const message of body.messages) {
      if (message.kind !== 'SendNotification' || !message.notification) continue;
      for (const event of message.notification.events) if (event.type !== 'Status' && event.watermark !== undefined) out.push(event.watermark);
    }
  }
  return out;
}

async function metricsOf(worker: Worker): Promise<Map<string, number>> {
  const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

/** Every mailbox has a checkpoint (its starting watermark): mail sent from now on is someone's to deliver. */
async function allStarted(env: Env): Promise<boolean> {
  const store = new RedisCheckpointStore({ redis: env.redis, prefix: env.prefix });
  const got = await Promise.all(MAILBOXES.map((mailbox) => store.get(checkpointKey({ mailbox, folders: ['inbox'], eventTypes: EVENT_TYPES }))));
  return got.every((c) => c !== undefined);
}

function deliverRound(env: Env, sent: string[]): void {
  for (const mailbox of MAILBOXES) {
    const event = env.sim.deliver(mailbox, { type: 'NewMail' });
    sent.push(event.watermark!);
  }
}

/** Two workers that have split the mailboxes 3/3, every mailbox started. */
async function twoWorkers(env: Env): Promise<[Worker, Worker]> {
  const a = await startWorker(env);
  const b = await startWorker(env);
  await until(() => a.held().size === 3 && b.held().size === 3, 'the mailboxes split between the two workers', SCRAPE_POLL);
  await until(() => allStarted(env), 'every mailbox checkpointed', SCRAPE_POLL);
  return [a, b];
}


function summarize(sent: readonly string[], received: readonly string[]): { lost: string[]; invented: string[]; duplicates: number } {
  const got = new Set(received);
  const known = new Set(sent);
  return {
    lost: sent.filter((w) => !got.has(w)),
    invented: [...got].filter((w) => !known.has(w)),
    duplicates: received.length - got.size,
  };
}

/**
 * After worker A went away: waits until B holds every mailbox (A's with higher fencing tokens than
 * A had), sends a round of mail and waits until everything sent reached the listener.
 */
async function takenOver(
  env: Env,
  b: Worker,
  heldByA: ReadonlyMap<string, number>,
  sent: string[],
  what: string,
): Promise<{ taken: { mailbox: string; token: number; at: number }[]; takenAt: number; result: ReturnType<typeof summarize> }> {
  await until(() => b.held().size === MAILBOXES.length, 'B holding every mailbox', SCRAPE_POLL);
  const taken = b.grants().filter((g) => heldByA.has(g.mailbox));
  for (const g of taken) expect(g.token, g.mailbox).toBeGreaterThan(heldByA.get(g.mailbox)!);
  deliverRound(env, sent);
  await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, what, SCRAPE_POLL);
  const result = summarize(sent, receivedWatermarks(env.listener));
  expect(result.invented).toEqual([]);
  expect(result.lost).toEqual([]);
  return { taken, takenAt: Math.max(...taken.map((g) => g.at)), result };
}

describe.skipIf(missing !== undefined)('ews-push-bridge forward with a coordinator', { timeout: 180_000 }, () => {
  it('two workers on one config split the mailboxes, each delivered by its holder; SIGTERM hands them over within a renewal, nothing lost', async () => {
    const env = await setUp();
    const [a, b] = await twoWorkers(env);
    const heldByA = a.held();
    const heldByB = b.held();
    expect(new Set([...heldByA.keys(), ...heldByB.keys()])).toEqual(new Set(MAILBOXES));

    const sent: string[] = [];
    for (let i = 0; i < 3; i++) deliverRound(env, sent);
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'every event at the listener', SCRAPE_POLL);
    // Delivered exactly by the holder: each mailbox's events counted by one worker only.
    const [ma, mb] = await Promise.all([metricsOf(a), metricsOf(b)]);
    for (const mailbox of MAILBOXES) {
      const byA = ma.get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0;
      const byB = mb.get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0;
      expect(heldByA.has(mailbox) ? [byA, byB] : [byB, byA], mailbox).toEqual([3, 0]);
    }
    expect(ma.get('ews_bridge_leases_held')).toBe(3);
    expect(mb.get('ews_bridge_leases_held')).toBe(3);
    expect(mb.get('ews_bridge_lease_grants_total')).toBe(3);
    // Zero samples from the start for every loss reason.
    for (const reason of ['rebalance', 'closing', 'expired', 'revoked']) expect(mb.get(`ews_bridge_lease_losses_total{reason="${reason}"}`), reason).toBe(0);
    const health = (await (await fetch(`${a.metricsUrl}/healthz`)).json()) as { status: string; mailboxes: { mailbox: string }[]; coordinator: { leasesHeld: number } };
    expect(health.status).toBe('ok');
    expect(health.mailboxes.map((m) => m.mailbox).sort()).toEqual([...heldByA.keys()].sort());
    expect(health.coordinator.leasesHeld).toBe(3);

    // Mail keeps arriving while A stops and B takes over.
    const unsubscribesBefore = env.sim.requests.filter((r) => r.operation === 'Unsubscribe').length;
    const termAt = Date.now();
    const releasedAt = a.child.waitFor(/lease coordinator left the group/, 60_000).then(() => Date.now());
    a.child.process.kill('SIGTERM');
    deliverRound(env, sent);
    expect(await a.child.exited(60_000)).toBe(0);
    const exitedAt = Date.now();
    deliverRound(env, sent);
    const { taken, takenAt, result } = await takenOver(env, b, heldByA, sent, 'every event at the listener after the hand-over');
    // A unsubscribed its three pull subscriptions before exiting, and logged what it gave up.
    expect(env.sim.requests.filter((r) => r.operation === 'Unsubscribe').length - unsubscribesBefore).toBeGreaterThanOrEqual(3);
    // (Earlier losses were the hand-overs to B when it joined.)
    const lostLines = logLines(a.child).filter((l) => l['message'] === 'lease lost: stopping the mailbox' && heldByA.get(String(l['mailbox'])) === Number(l['token']));
    expect(lostLines.map((l) => [l['mailbox'], l['reason']]).sort()).toEqual([...heldByA.keys()].sort().map((m) => [m, 'closing']));
    const released = await releasedAt;
    expect(takenAt).toBeGreaterThanOrEqual(released - 50);
    console.log(
      `graceful takeover: SIGTERM → A released its leases ${released - termAt} ms (after Unsubscribe and final checkpoints), → B granted all ${taken.length} of A's mailboxes ${takenAt - released} ms later; A exited ${exitedAt - termAt} ms after SIGTERM ` +
        `(renewal ${RENEW_SECONDS * 1000} ms, TTL ${TTL_SECONDS * 1000} ms); ${sent.length} events, ${result.duplicates} duplicates`,
    );

    b.child.process.kill('SIGTERM');
    expect(await b.child.exited(60_000)).toBe(0);
    expect(env.sim.subscriptions).toEqual([]);
  });

  it('SIGKILL one worker: the other takes its mailboxes once the lease expired, from their checkpoints, nothing lost', async () => {
    const env = await setUp();
    const [a, b] = await twoWorkers(env);
    const heldByA = a.held();
    const sent: string[] = [];
    deliverRound(env, sent);
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'the first events at the listener', SCRAPE_POLL);

    const killedAt = Date.now();
    a.child.process.kill('SIGKILL');
    await a.child.exited();
    deliverRound(env, sent);
    const { taken, takenAt, result } = await takenOver(env, b, heldByA, sent, 'every event at the listener after the takeover');
    console.log(`kill takeover: SIGKILL → B granted all ${taken.length} of A's mailboxes ${takenAt - killedAt} ms (TTL ${TTL_SECONDS * 1000} ms); ${sent.length} events, ${result.duplicates} duplicates`);

    b.child.process.kill('SIGTERM');
    expect(await b.child.exited(60_000)).toBe(0);
  });

  it('hybrid: a second worker joining takes half the mailboxes by hand-over while mail flows, nothing lost, no duplicates', async () => {
    const env = await setUp('hybrid');
    const a = await startWorker(env);
    await until(() => a.held().size === MAILBOXES.length, 'A holding every mailbox', SCRAPE_POLL);
    await until(() => allStarted(env), 'every mailbox checkpointed', SCRAPE_POLL);
    const sent: string[] = [];
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        deliverRound(env, sent);
        await sleep(100);
      }
    })();
    const b = await startWorker(env);
    await until(() => a.held().size === 3 && b.held().size === 3, 'the mailboxes split between the two workers', SCRAPE_POLL);
    const movedAt = sent.length;
    await until(async () => {
      const m = await metricsOf(b);
      return [...b.held().keys()].every((mailbox) => (m.get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0) > 0) && sent.length > movedAt + MAILBOXES.length;
    }, 'B delivering mail sent after the hand-over', SCRAPE_POLL);
    flowing = false;
    await flow;
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'every event at the listener', SCRAPE_POLL);
    const result = summarize(sent, receivedWatermarks(env.listener));
    expect(result.invented).toEqual([]);
    expect(result.lost).toEqual([]);
    const handedOver = logLines(a.child).filter((l) => l['message'] === 'lease lost: stopping the mailbox');
    expect(handedOver.map((l) => l['reason'])).toEqual(['rebalance', 'rebalance', 'rebalance']);
    console.log(`hybrid hand-over to a joining worker: ${sent.length} events, ${result.duplicates} duplicates`);
    expect(result.duplicates).toBe(0);
    for (const w of [a, b]) w.child.process.kill('SIGTERM');
    expect(await Promise.all([a.child.exited(60_000), b.child.exited(60_000)])).toEqual([0, 0]);
    expect(env.sim.subscriptions).toEqual([]);
  });

  it('streaming: two workers split the mailboxes, each on its own shared connection, and unsubscribe on SIGTERM', async () => {
    const env = await setUp('streaming');
    const a = await startWorker(env);
    const b = await startWorker(env);
    await until(() => a.held().size === 3 && b.held().size === 3, 'the mailboxes split between the two workers', SCRAPE_POLL);
    // Streaming has no position to resume from: mail is someone's to deliver once its holder is connected.
    await until(async () => {
      const [ma, mb] = await Promise.all([metricsOf(a), metricsOf(b)]);
      return MAILBOXES.every((m) => (a.held().has(m) ? ma : mb).get(`ews_bridge_connected{mailbox="${m}"}`) === 1);
    }, 'every mailbox connected at its holder', SCRAPE_POLL);
    const sent: string[] = [];
    deliverRound(env, sent);
    deliverRound(env, sent);
    // Streaming notifications reach the listener without watermarks: counted through the metrics.
    const delivered = async (w: Worker, mailbox: string): Promise<number> => (await metricsOf(w)).get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0;
    await until(async () => (await Promise.all(MAILBOXES.map(async (m) => (await delivered(a, m)) + (await delivered(b, m))))).every((n) => n === 2), 'every event at the listener', SCRAPE_POLL);
    const [ma, mb] = await Promise.all([metricsOf(a), metricsOf(b)]);
    for (const mailbox of MAILBOXES) {
      const byA = ma.get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0;
      const byB = mb.get(`ews_bridge_events_delivered_total{mailbox="${mailbox}"}`) ?? 0;
      expect(a.held().has(mailbox) ? [byA, byB] : [byB, byA], mailbox).toEqual([2, 0]);
    }
    expect(env.sim.openStreamingConnections).toBe(2);
    for (const w of [a, b]) w.child.process.kill('SIGTERM');
    expect(await Promise.all([a.child.exited(60_000), b.child.exited(60_000)])).toEqual([0, 0]);
    expect(env.sim.subscriptions).toEqual([]);
  });

  it('streaming: SIGKILL one worker: the other takes its mailboxes and recovers with SyncFolderItems, from the fenced sync states, what arrived while nobody held them', async () => {
    const env = await setUp('streaming');
    const a = await startWorker(env);
    const b = await startWorker(env);
    await until(() => a.held().size === 3 && b.held().size === 3, 'the mailboxes split between the two workers', SCRAPE_POLL);
    // Every mailbox has its SyncFolderItems baseline in Redis: from then on nothing can be lost.
    const store = new RedisCheckpointStore({ redis: env.redis, prefix: env.prefix });
    await until(async () =>
      (await Promise.all(MAILBOXES.map((mailbox) => store.get(checkpointKey({ mailbox, folders: ['inbox'], eventTypes: EVENT_TYPES }))))).every(
        (c) => c?.syncStates?.['name:inbox'] !== undefined,
      ),
      'every mailbox with a stored sync state',
      SCRAPE_POLL,
    );
    const heldByA = a.held();
    const mailboxOf = new Map<string, string>();
    const sent = new Map<string, number[]>(MAILBOXES.map((m) => [m, []]));
    const deliver = (): void => {
      for (const mailbox of MAILBOXES) sent.get(mailbox)!.push(env.sim.deliver(mailbox, { type: 'NewMail' }).seq);
    };
    const missing = (): string[] => {
      for (const s of env.sim.subscriptions) mailboxOf.set(s.id, s.mailbox);
      const got = receivedSequences(env.listener, mailboxOf);
      return MAILBOXES.flatMap((m) => sent.get(m)!.filter((seq) => !got.get(m)?.includes(seq)).map((seq) => `${m}#${seq}`));
    };
    deliver();
    await until(() => missing().length === 0, 'the live events at the listener', SCRAPE_POLL);

    const killedAt = Date.now();
    a.child.process.kill('SIGKILL');
    await a.child.exited(30_000);
    // While A's mailboxes have no live holder (A is dead, its leases not yet expired).
    deliver();
    deliver();
    await until(() => b.held().size === MAILBOXES.length, 'B holding every mailbox', SCRAPE_POLL);
    const taken = b.grants().filter((g) => heldByA.has(g.mailbox));
    for (const g of taken) expect(g.token, g.mailbox).toBeGreaterThan(heldByA.get(g.mailbox)!);
    deliver();
    await until(() => missing().length === 0, 'every event at the listener, the ones made while nobody held the mailbox included', SCRAPE_POLL);
    expect(missing()).toEqual([]);
    // B caught up A's mailboxes from their stored states: a gap each, recovered (nothing may be lost).
    const m = await metricsOf(b);
    for (const mailbox of heldByA.keys()) {
      expect(m.get(`ews_bridge_gaps_total{mailbox="${mailbox}",events_may_be_lost="true"}`) ?? 0, mailbox).toBe(0);
    }
    console.log(
      `streaming kill takeover: B granted A's ${taken.length} mailboxes ${Math.max(...taken.map((g) => g.at)) - killedAt} ms after SIGKILL (TTL ${TTL_SECONDS * 1000} ms); ` +
        `${[...sent.values()].flat().length} events, 0 lost; gaps at B without loss: ${[...heldByA.keys()].map((mb) => m.get(`ews_bridge_gaps_total{mailbox="${mb}",events_may_be_lost="false"}`) ?? 0).join(', ')}`,
    );
    b.child.process.kill('SIGTERM');
    expect(await b.child.exited(60_000)).toBe(0);
  });

  it('Redis outages: a short one changes nothing; one longer than the lease drops every lease until Redis is back, then they are granted again and nothing is lost', async () => {
    const env = await setUp('pull', { unhealthyAfterSeconds: 1 });
    const a = await startWorker(env);
    await until(() => a.held().size === MAILBOXES.length, 'A holding every mailbox', SCRAPE_POLL);
    await until(() => allStarted(env), 'every mailbox checkpointed', SCRAPE_POLL);
    const sent: string[] = [];
    const grantsBefore = a.grants().length;
    const healthz = async (): Promise<{ status: number; body: { reasons: { reason: string; mailbox?: string }[]; coordinator: { unreachableSince?: string } } }> => {
      const response = await fetch(`${a.metricsUrl}/healthz`);
      return { status: response.status, body: (await response.json()) as never };
    };
    expect((await healthz()).status).toBe(200);

    // Shorter than the TTL less a renewal and the 10 % margin: A keeps its leases and keeps forwarding.
    env.redisServer.pause();
    deliverRound(env, sent);
    await sleep(1_200);
    env.redisServer.resume();
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'the events of the short outage at the listener', SCRAPE_POLL);
    expect(logLines(a.child).filter((l) => l['message'] === 'lease lost: stopping the mailbox')).toEqual([]);

    // Longer than the TTL: A stops every mailbox before anyone could take them, then rejoins.
    env.redisServer.pause();
    await a.child.waitFor(/"reason":"expired"/, 60_000);
    // Holding nothing and unable to reach Redis for longer than unhealthyAfterSeconds: not an idle, healthy worker.
    await until(async () => (await healthz()).status === 503, '/healthz 503 coordinator-unreachable', SCRAPE_POLL);
    const down = await healthz();
    expect(down.body.reasons).toEqual([expect.objectContaining({ reason: 'coordinator-unreachable', message: expect.stringMatching(/^no lease renewal has reached Redis for \d+ s$/) })]);
    expect(down.body.reasons[0]).not.toHaveProperty('mailbox');
    expect(down.body.coordinator.unreachableSince).toEqual(expect.any(String));
    deliverRound(env, sent);
    env.redisServer.resume();
    await until(() => a.grants().length === grantsBefore + MAILBOXES.length && a.held().size === MAILBOXES.length, 'A granted every mailbox again', SCRAPE_POLL);
    await until(async () => (await healthz()).status === 200, '/healthz 200 again', SCRAPE_POLL);
    deliverRound(env, sent);
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'every event at the listener', SCRAPE_POLL);
    const result = summarize(sent, receivedWatermarks(env.listener));
    expect(result.lost).toEqual([]);
    expect(result.invented).toEqual([]);
    console.log(`Redis outages: ${sent.length} events, ${result.duplicates} duplicates`);
    a.child.process.kill('SIGTERM');
    expect(await a.child.exited(60_000)).toBe(0);
  });

  it('a rolling change of the mailbox list: the added mailbox starts with the first new process, the removed one is retired once the last old one stops, nothing lost, no refused grant', async () => {
    const env = await setUp();
    const removed = MAILBOXES[5]!;
    const added = 'room6@contoso.com';
    const kept = MAILBOXES.slice(0, 5);
    const next = [...kept, added];
    const nextFile = join(dirname(env.file), 'bridge-next.json');
    writeFileSync(nextFile, JSON.stringify({ ...(JSON.parse(readFileSync(env.file, 'utf8')) as Record<string, unknown>), mailboxes: next }));
    const old1 = await startWorker(env);
    const old2 = await startWorker(env);
    await until(() => old1.held().size + old2.held().size === MAILBOXES.length, 'the old list held', SCRAPE_POLL);
    const sent: string[] = [];
    const round = (mailboxes: readonly string[]): void => {
      for (const mailbox of mailboxes) sent.push(env.sim.deliver(mailbox, { type: 'NewMail' }).watermark!);
    };
    await until(() => allStarted(env), 'every old mailbox checkpointed', SCRAPE_POLL);

    // One old process at a time is replaced by a new one.
    old1.child.process.kill('SIGTERM');
    expect(await old1.child.exited(60_000)).toBe(0);
    const new1 = await startWorker(env, nextFile);
    await until(() => new1.held().has(added), 'the added mailbox taken by the first new process', SCRAPE_POLL);
    round(kept);
    old2.child.process.kill('SIGTERM');
    expect(await old2.child.exited(60_000)).toBe(0);
    round(kept);
    const new2 = await startWorker(env, nextFile);
    await until(() => new1.held().size + new2.held().size === next.length && new2.held().size > 0, 'the new list held by the new processes', SCRAPE_POLL);
    round(next);
    await until(() => summarize(sent, receivedWatermarks(env.listener)).lost.length === 0, 'every event at the listener', SCRAPE_POLL);
    const result = summarize(sent, receivedWatermarks(env.listener));
    expect(result.lost).toEqual([]);
    expect(result.invented).toEqual([]);

    // The removed mailbox is nobody's: out of the shared set, never granted to a new process.
    expect(await env.redis.sismember(`${env.prefix}:all`, removed)).toBe(0);
    expect(await env.redis.hexists(`${env.prefix}:owner`, removed)).toBe(0);
    for (const w of [new1, new2]) {
      expect(w.grants().map((g) => g.mailbox)).not.toContain(removed);
      expect(logLines(w.child).filter((l) => String(l['message']).includes('does not list'))).toEqual([]);
    }
    console.log(`rolling change: ${sent.length} events, ${result.duplicates} duplicates; new processes hold ${new1.held().size} + ${new2.held().size}`);
    for (const w of [new1, new2]) w.child.process.kill('SIGTERM');
    for (const w of [new1, new2]) expect(await w.child.exited(60_000)).toBe(0);
  });

  it('exits 4 naming the coordinator when Redis is down at start, 2 for a --coordinator that is not a Redis URL, 3 when Redis refuses the password', async () => {
    const env = await setUp();
    const port = await freePort();
    const down = spawnCli(['forward', '--config', env.file, '--coordinator', `redis://127.0.0.1:${port}`], { BRIDGE_TEST_PASSWORD: PASSWORD });
    expect(await down.exited(60_000)).toBe(4);
    expect(down.stderr()).toContain(`Cannot reach the coordinator's Redis at redis://127.0.0.1:${port} (--coordinator)`);
    expect(down.stderr()).toContain('ECONNREFUSED');
    expect(env.listener.posts).toEqual([]);
    expect(env.sim.subscriptions).toEqual([]);

    const bad = spawnCli(['forward', '--config', env.file, '--coordinator', 'http://redis.contoso.local:6379'], { BRIDGE_TEST_PASSWORD: PASSWORD });
    expect(await bad.exited(60_000)).toBe(2);
    expect(bad.stderr()).toContain('--coordinator: must be a redis:// or rediss:// URL');

    // A Redis that refuses the password (from urlEnv): exit 3, the password never shown.
    await env.redis.config('SET', 'requirepass', 'the-right-one');
    const wrong = 'wrong-redis-Pa55';
    const refused = spawnCli(['forward', '--config', env.file], {
      BRIDGE_TEST_PASSWORD: PASSWORD,
      BRIDGE_TEST_REDIS_URL: `redis://default:${wrong}@127.0.0.1:${env.redisServer.port}`,
    });
    expect(await refused.exited(60_000)).toBe(3);
    expect(refused.stderr()).toContain(`Cannot authenticate to the coordinator's Redis at redis://127.0.0.1:${env.redisServer.port} (coordinator.urlEnv)`);
    expect(refused.stderr()).not.toContain(wrong);
  });
});
