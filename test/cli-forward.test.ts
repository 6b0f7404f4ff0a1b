/**
 * `ews-push-bridge forward` end to end: a config file → the CLI in a child process → EwsSimulator
 * (in this process) → a legacy push listener (in this process). Checks every event arrives,
 * `/metrics` (scraped and parsed) and `/healthz`, that SIGTERM removes the EWS subscriptions and
 * leaves the checkpoint at the last delivered event, that a restart resumes from it, and the exit
 * codes for bad credentials (3) and an unreachable server (4).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsSimulator } from '../lib/testing/index.js';
import { receivedSequences, startCaptureListener, type CaptureListener } from './helpers/capture-listener.js';
import { killAll, spawnCli, type CliChild } from './helpers/cli-process.js';
import { parsePrometheus } from './helpers/prometheus.js';
import { until } from './helpers/until.js';

const USER = 'svc-bridge@contoso.com';
const PASSWORD = 'forward-test-Pa55word';
const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ews-cli-forward-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ users: { [USER]: PASSWORD } });
  cleanups.push(() => sim.close());
  return sim;
}

async function listener(): Promise<CaptureListener> {
  const l = await startCaptureListener();
  cleanups.push(() => l.close());
  return l;
}

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, 'bridge.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}



async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function baseConfig(sim: EwsSimulator, l: CaptureListener): Record<string, unknown> {
  return {
    ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
    mode: 'hybrid',
    mailboxes: [ALICE, BOB],
    folders: ['inbox'],
    pollIntervalSeconds: 30,
    listener: { url: l.url, statusFrequencyMinutes: 1 },
    checkpoint: { file: 'state/checkpoints.json' },
    metrics: { port: 0 },
    log: { level: 'debug' },
  };
}

async function startForward(file: string): Promise<{ child: CliChild; metricsUrl: string }> {
  const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: PASSWORD });
  const [, metricsUrl] = await child.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/);
  await child.waitFor(/all subscriptions connected/);
  return { child, metricsUrl: metricsUrl! };
}

describe('ews-push-bridge forward', { timeout: 120_000 }, () => {
  it('forwards, serves /metrics and /healthz, and on SIGTERM unsubscribes and leaves the checkpoint at the last event; a restart resumes', async () => {
    const sim = await simulator();
    const l = await listener();
    const dir = tempDir();
    const file = writeConfig(dir, baseConfig(sim, l));

    const { child, metricsUrl } = await startForward(file);
    // Both mailboxes' doorbells share one GetStreamingEvents connection.
    await until(() => sim.subscriptions.length === 4 && sim.openStreamingConnections === 1, 'the shared doorbell connection');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sim.openStreamingConnections).toBe(1);
    expect(child.stderr() + child.stdout()).toMatch(/forwarding 2 mailboxes \(hybrid, on shared connections\)/);
    const mailboxOf = new Map(sim.subscriptions.map((s) => [s.id, s.mailbox] as const));
    const aliceSeqs = [1, 2, 3, 4, 5].map(() => sim.deliver(ALICE, { type: 'NewMail' }).seq);
    const bobSeqs = [1, 2, 3].map(() => sim.deliver(BOB, { type: 'NewMail' }).seq);
    await until(() => {
      const got = receivedSequences(l, mailboxOf);
      return got.get(ALICE)?.length === 5 && got.get(BOB)?.length === 3;
    }, 'every event at the listener');
    expect(receivedSequences(l, mailboxOf)).toEqual(new Map([[ALICE, aliceSeqs], [BOB, bobSeqs]]));

    const metricsResponse = await fetch(`${metricsUrl}/metrics`);
    expect(metricsResponse.status).toBe(200);
    expect(metricsResponse.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const metrics = parsePrometheus(await metricsResponse.text()).samples;
    expect(metrics.get(`ews_bridge_events_delivered_total{mailbox="${ALICE}"}`)).toBe(5);
    expect(metrics.get(`ews_bridge_events_delivered_total{mailbox="${BOB}"}`)).toBe(3);
    expect(metrics.get(`ews_bridge_connected{mailbox="${ALICE}"}`)).toBe(1);
    // Zero samples from the start (no TYPE-only families), and Node's process metrics beside them.
    expect(metrics.get(`ews_bridge_listener_failures_total{mailbox="${ALICE}"}`)).toBe(0);
    expect(metrics.get(`ews_bridge_gaps_total{mailbox="${BOB}",events_may_be_lost="true"}`)).toBe(0);
    expect(metrics.has(`ews_bridge_retries_total{mailbox="${BOB}",reason="server-busy"}`)).toBe(true);
    expect(metrics.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metrics.has('process_cpu_seconds_total')).toBe(true);
    expect(metrics.has('nodejs_eventloop_lag_seconds')).toBe(true);
    const posts = (metrics.get(`ews_bridge_listener_post_duration_seconds_count{mailbox="${ALICE}"}`) ?? 0) + (metrics.get(`ews_bridge_listener_post_duration_seconds_count{mailbox="${BOB}"}`) ?? 0);
    expect(posts).toBe(l.posts.length);
    expect(metrics.get(`ews_bridge_listener_post_duration_seconds_bucket{le="+Inf",mailbox="${ALICE}"}`)).toBe(
      metrics.get(`ews_bridge_listener_post_duration_seconds_count{mailbox="${ALICE}"}`),
    );
    expect(metrics.get(`ews_bridge_listener_post_duration_seconds_sum{mailbox="${ALICE}"}`)).toBeGreaterThan(0);

    const health = await fetch(`${metricsUrl}/healthz`);
    expect(health.status).toBe(200);
    const healthBody = (await health.json()) as { status: string; mailboxes: { mailbox: string; state: string }[] };
    expect(healthBody.status).toBe('ok');
    expect(healthBody.mailboxes.map((m) => [m.mailbox, m.state])).toEqual([[ALICE, 'connected'], [BOB, 'connected']]);

    child.process.kill('SIGTERM');
    expect(await child.exited()).toBe(0);
    expect(child.stderr()).toMatch(/stopping: closing subscriptions[\s\S]*stopped/);
    expect(child.stderr() + child.stdout()).not.toContain(PASSWORD);
    // Hybrid: a pull subscription and a streaming doorbell per mailbox, each removed with EWS Unsubscribe.
    const unsubscribes = sim.requests.filter((r) => r.operation === 'Unsubscribe');
    expect(unsubscribes.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(sim.subscriptions).toEqual([]);
    const checkpoints = JSON.parse(readFileSync(join(dir, 'state/checkpoints.json'), 'utf8')) as { checkpoints: Record<string, { watermark: string }> };
    const keyOf = (mailbox: string): string => Object.keys(checkpoints.checkpoints).find((k) => k.includes(`mailbox=${encodeURIComponent(mailbox)}`))!;
    expect(checkpoints.checkpoints[keyOf(ALICE)]?.watermark).toBe(sim.events(ALICE).at(-1)?.watermark);
    expect(checkpoints.checkpoints[keyOf(BOB)]?.watermark).toBe(sim.events(BOB).at(-1)?.watermark);

    // Mail that arrives while the bridge is down is forwarded when it comes back.
    const whileDown = [sim.deliver(ALICE, { type: 'NewMail' }).seq, sim.deliver(ALICE, { type: 'Created', folder: 'inbox' }).seq];
    const postsBefore = l.posts.length;
    const again = await startForward(file);
    const mailboxOf2 = new Map(sim.subscriptions.map((s) => [s.id, s.mailbox] as const));
    await until(() => l.posts.length > postsBefore && (receivedSequences(l, mailboxOf2).get(ALICE) ?? []).length === 2, 'the events of the downtime');
    expect(receivedSequences(l, mailboxOf2).get(ALICE)).toEqual(whileDown);
    again.child.process.kill('SIGINT');
    expect(await again.child.exited()).toBe(0);
    expect(sim.subscriptions).toEqual([]);
  });

  it('streaming mode puts several mailboxes on one shared GetStreamingEvents connection and unsubscribes each on SIGTERM', async () => {
    const sim = await simulator();
    const l = await listener();
    const dir = tempDir();
    const carol = 'carol@contoso.com';
    const config = { ...baseConfig(sim, l), mode: 'streaming', mailboxes: [ALICE, BOB, carol] };
    delete (config as { checkpoint?: unknown }).checkpoint;
    const { child, metricsUrl } = await startForward(writeConfig(dir, config));
    expect(child.stderr() + child.stdout()).toMatch(/forwarding 3 mailboxes \(streaming, on shared connections\)/);
    expect(sim.openStreamingConnections).toBe(1);
    const mailboxOf = new Map(sim.subscriptions.map((s) => [s.id, s.mailbox] as const));
    const sent = new Map([ALICE, BOB, carol].map((m) => [m, [1, 2].map(() => sim.deliver(m, { type: 'NewMail' }).seq)] as const));
    await until(() => [...sent].every(([m, seqs]) => receivedSequences(l, mailboxOf).get(m)?.length === seqs.length), 'every event at the listener');
    expect(receivedSequences(l, mailboxOf)).toEqual(sent);
    const metrics = parsePrometheus(await (await fetch(`${metricsUrl}/metrics`)).text()).samples;
    for (const m of [ALICE, BOB, carol]) expect(metrics.get(`ews_bridge_connected{mailbox="${m}"}`)).toBe(1);

    child.process.kill('SIGTERM');
    expect(await child.exited()).toBe(0);
    expect(sim.requests.filter((r) => r.operation === 'Unsubscribe').map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sim.subscriptions).toEqual([]);
  });

  it('streaming with checkpoint.file is loss-free across SIGKILL: a restart recovers what arrived while it was down', async () => {
    const sim = await simulator();
    const l = await listener();
    const dir = tempDir();
    const config = { ...baseConfig(sim, l), mode: 'streaming' };
    const mailboxOf = new Map<string, string>();
    const learn = (): Map<string, string> => {
      for (const s of sim.subscriptions) mailboxOf.set(s.id, s.mailbox);
      return mailboxOf;
    };
    const seen = (m: string): Set<number> => new Set(receivedSequences(l, learn()).get(m) ?? []);
    const first = await startForward(writeConfig(dir, config));
    const live = new Map([ALICE, BOB].map((m) => [m, sim.deliver(m, { type: 'NewMail' }).seq] as const));
    await until(() => [...live].every(([m, seq]) => seen(m).has(seq)), 'the live events');
    // The sync states are stored in the background once the events are handled, so after the
    // listener saw them: wait for the file rather than read it at once (that raced under load).
    type Stored = { checkpoints: Record<string, { syncStates?: Record<string, string> }> };
    const withSyncStates = (): Stored['checkpoints'][string][] => {
      let stored: Stored;
      try {
        stored = JSON.parse(readFileSync(join(dir, 'state/checkpoints.json'), 'utf8')) as Stored;
      } catch {
        return [];
      }
      return Object.values(stored.checkpoints).filter((c) => c.syncStates?.['name:inbox'] !== undefined);
    };
    await until(() => withSyncStates().length >= 2, 'both sync states in the checkpoint file');
    expect(withSyncStates()).toHaveLength(2);
    first.child.process.kill('SIGKILL');
    await first.child.exited();
    // While the bridge is down.
    const down = new Map([ALICE, BOB].map((m) => [m, [1, 2, 3].map(() => sim.deliver(m, { type: 'NewMail' }).seq)] as const));
    const second = await startForward(writeConfig(dir, config));
    await until(() => [...down].every(([m, seqs]) => seqs.every((seq) => seen(m).has(seq))), 'the events made while it was down');
    second.child.process.kill('SIGTERM');
    expect(await second.child.exited()).toBe(0);
    expect(second.child.stderr() + second.child.stdout()).not.toMatch(/checkpoint\.file is not used/);
  });

  it('exits 3 when the server refuses the credentials, without printing them', async () => {
    const sim = await simulator();
    const l = await listener();
    const dir = tempDir();
    const file = writeConfig(dir, { ...baseConfig(sim, l), metrics: undefined });
    const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: 'wrong-password-123' });
    expect(await child.exited()).toBe(3);
    expect(child.stderr()).toContain(`Cannot authenticate to ${sim.url}`);
    expect(child.stderr()).not.toContain('wrong-password-123');
    expect(l.posts).toEqual([]);
  });

  it('exits 4 when the server cannot be reached within ews.startupTimeoutSeconds', async () => {
    const l = await listener();
    const dir = tempDir();
    const port = await freePort();
    const file = writeConfig(dir, {
      ews: { url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`, auth: { type: 'none' }, startupTimeoutSeconds: 2 },
      listener: { url: l.url },
    });
    const child = spawnCli(['forward', '--config', file]);
    expect(await child.exited()).toBe(4);
    expect(child.stderr()).toContain(`Cannot reach the EWS server at http://127.0.0.1:${port}/EWS/Exchange.asmx`);
    expect(child.stderr()).toContain('ECONNREFUSED');
  });
});
