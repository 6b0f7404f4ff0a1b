/**
 * ews-javascript-api apps that already stream or pull, moved to the bridge by one import.
 *
 * The apps in test/ejs-apps/ are Microsoft's streaming and pull samples as ews-javascript-api apps
 * write them, in two copies that differ only in their first line (checked below): one imports
 * `ExchangeService` (and `StreamingSubscriptionConnection`) from ews-javascript-api, the other from
 * this adapter. Each runs in a process of its own (test/children/ejs-app.ts) against its own
 * EwsSimulator, side by side, through the same events and the same fault: Closed every 2 s (the
 * baseline of every streaming scenario), a mid-envelope cut, ErrorServerBusy, a lost subscription,
 * HTTP 500, HTTP 401.
 *
 * Asserted for the bridge: the app's delegates get every event once, in wire order, except events
 * made inside a window the bridge reported as lossy (`OnGap`, the invariant helper); the process
 * stays up; the requests it sends stay bounded (no hot loop). A 401 is the error the app must act
 * on: `OnSubscriptionError` (streaming) or a rejected `GetEvents()` (pull), once, then silence.
 * Measured for ews-javascript-api (printed as a table, not asserted): what the same app lost.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { GapEvent } from '../lib/sources/lifecycle.js';
import { EwsSimulator, type FaultSpec } from '../lib/testing/index.js';
import type { AppReport, AppTask } from './children/ejs-app.js';
import { expectReceivedExceptLossyGaps } from './helpers/streaming-harness.js';

const MAILBOX = 'alice@contoso.com';
const CHILD = fileURLToPath(new URL('./children/ejs-app.ts', import.meta.url));
const EVENTS_PER_PHASE = 20;
const DELIVERY_INTERVAL_MS = 100;
/** 30 minutes (the samples' connection lifetime, and the bridge's default) last 2 s. */
const STREAMING_TIME_SCALE = 1 / 900;
/** The pull sample's 5-minute subscription timeout lasts 3 s. */
const PULL_TIME_SCALE = 0.01;
const PULL_APP_POLL_MS = 200;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** One sample app in its own process. */
class AppProcess {
  readonly events: { seq: number; at: number }[] = [];
  readonly errors: { text: string; at: number }[] = [];
  readonly gaps: { from: number; to: number }[] = [];
  disconnects = 0;
  ready = false;
  failure: string | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(task: AppTask) {
    this.child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], silent: true, serialization: 'advanced' });
    // ews-javascript-api logs parser warnings to stdout; keep only the tail of stderr for failures.
    this.child.stdout?.resume();
    this.child.stderr?.on('data', (data: Buffer) => (this.stderr = (this.stderr + data.toString('utf8')).slice(-2000)));
    this.child.on('message', (report: AppReport) => {
      if (report.type === 'ready') this.ready = true;
      else if (report.type === 'event') this.events.push({ seq: report.seq, at: report.at });
      else if (report.type === 'gap') this.gaps.push({ from: report.from, to: report.to });
      else if (report.type === 'failed') this.failure = report.error;
      else if (report.error) this.errors.push({ text: report.text, at: report.at });
      else if (report.text.includes('disconnected')) this.disconnects++;
    });
    this.child.on('exit', (code, signal) => (this.exit = { code, signal }));
    this.child.send(task);
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  get received(): number[] {
    return this.events.map((e) => e.seq);
  }

  /** The reported lossy windows, as the invariant helper takes them. */
  get lossyGaps(): GapEvent[] {
    return this.gaps.map((g) => ({
      type: 'gap',
      subscriptionId: '',
      reason: 'connection-error',
      from: new Date(g.from),
      to: new Date(g.to),
      subscriptionKept: false,
      eventsMayBeLost: true,
    }));
  }

  async whenReady(): Promise<void> {
    await until(() => this.ready || this.failure !== undefined || !this.alive, 'the app to start');
    if (!this.ready) throw new Error(`the app did not start: ${this.failure ?? JSON.stringify(this.exit)} ${this.stderr}`);
  }

  /** Asks the app to stop (Close, Unsubscribe); waits for the process to end. */
  async stop(): Promise<void> {
    if (this.alive) this.child.send('stop');
    await until(() => !this.alive, 'the app to exit', 15_000).catch(() => this.child.kill('SIGKILL'));
  }
}

interface Scenario {
  readonly name: string;
  /** What goes wrong after the first phase of events (nothing: the Closed-every-2-s baseline). */
  readonly fault?: (operation: 'GetStreamingEvents' | 'GetEvents') => FaultSpec;
  /** The app must act (refused credentials): events after it are not expected. */
  readonly fatal?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'no fault (streaming: Closed every 2 s)' },
  { name: 'mid-envelope cut', fault: (operation) => ({ type: 'cut-mid-envelope', ...(operation === 'GetEvents' ? { operation } : {}) }) },
  { name: 'ErrorServerBusy', fault: (operation) => ({ type: 'server-busy', backOffMs: 500, operation }) },
  { name: 'lost subscription', fault: () => ({ type: 'forget-subscriptions' }) },
  { name: 'HTTP 500', fault: (operation) => ({ type: 'html-error-page', status: 500, operation }) },
  { name: 'HTTP 401', fault: (operation) => ({ type: 'http-401', operation }), fatal: true },
];

interface Row {
  app: string;
  scenario: string;
  client: string;
  delivered: number;
  received: number;
  duplicates: number;
  outOfOrder: number;
  lost: number;
  lostInReportedGaps: number;
  errorsToApp: number;
  process: string;
  requests: string;
}
const rows: Row[] = [];

afterAll(() => {
  // The side-by-side report: the same app, the same wire, the same fault.
  console.table(rows);
});

function rowOf(app: string, scenario: string, client: string, run: AppProcess, delivered: readonly { seq: number }[], sim: EwsSimulator): Row {
  const received = run.received;
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -Infinity;
  for (const seq of received) {
    if (seen.has(seq)) duplicates++;
    else if (seq < last) outOfOrder++;
    seen.add(seq);
    last = Math.max(last, seq);
  }
  const lost = delivered.filter((d) => !seen.has(d.seq));
  const inGaps = lost.filter((d) => {
    const at = (d as { at?: number }).at ?? 0;
    return run.gaps.some((g) => g.from <= at && at <= g.to);
  });
  const counts = new Map<string, number>();
  for (const r of sim.requests) counts.set(r.operation ?? '?', (counts.get(r.operation ?? '?') ?? 0) + 1);
  return {
    app,
    scenario,
    client,
    delivered: delivered.length,
    received: seen.size,
    duplicates,
    outOfOrder,
    lost: lost.length,
    lostInReportedGaps: inGaps.length,
    errorsToApp: run.errors.length,
    process: run.exit === undefined ? 'up' : `exited (${run.exit.code ?? run.exit.signal})`,
    requests: [...counts].map(([op, n]) => `${op} ${n}`).join(', '),
  };
}

function count(sim: EwsSimulator, ...operations: string[]): number {
  return sim.requests.filter((r) => r.operation !== undefined && operations.includes(r.operation)).length;
}

/**
 * Runs one scenario for both clients at once: phase 1 of events, the fault, phase 2; waits until
 * the bridge's app has everything it can have, then observes a little longer for both.
 */
async function runScenario(app: 'streaming' | 'pull', scenario: Scenario): Promise<void> {
  const timeScale = app === 'streaming' ? STREAMING_TIME_SCALE : PULL_TIME_SCALE;
  const operation = app === 'streaming' ? 'GetStreamingEvents' : 'GetEvents';
  const sims = {
    bridge: await EwsSimulator.start({ timeScale, keepAliveIntervalMs: 200 }),
    ews: await EwsSimulator.start({ timeScale, keepAliveIntervalMs: 200 }),
  };
  const runs = {
    bridge: new AppProcess({ app, variant: 'bridge', url: sims.bridge.url, pollMs: PULL_APP_POLL_MS }),
    ews: new AppProcess({ app, variant: 'ews', url: sims.ews.url, pollMs: PULL_APP_POLL_MS }),
  };
  const delivered = { bridge: [] as { seq: number; at: number }[], ews: [] as { seq: number; at: number }[] };
  try {
    await Promise.all([runs.bridge.whenReady(), runs.ews.whenReady()]);
    if (app === 'streaming') {
      await until(() => sims.bridge.subscriptions.some((s) => s.connected) && sims.ews.subscriptions.some((s) => s.connected), 'both streams open');
    }
    const started = Date.now();
    const phase = async (): Promise<void> => {
      for (let i = 0; i < EVENTS_PER_PHASE; i++) {
        for (const client of ['bridge', 'ews'] as const) {
          const at = Date.now();
          const seq = sims[client].deliver(MAILBOX, { type: 'NewMail' }).seq;
          delivered[client].push({ seq, at });
        }
        await sleep(DELIVERY_INTERVAL_MS);
      }
    };

    await phase();
    let requestsAtError = 0;
    if (scenario.fatal) {
      await until(() => runs.bridge.events.length >= EVENTS_PER_PHASE, 'phase 1 at the bridge app');
    }
    if (scenario.fault) {
      const fault = scenario.fault(operation);
      sims.bridge.inject(fault);
      sims.ews.inject(fault);
    }
    if (scenario.fatal) {
      await until(() => runs.bridge.errors.length > 0, 'the error the app must act on');
      requestsAtError = count(sims.bridge, 'Subscribe', 'GetStreamingEvents', 'GetEvents');
    }
    await phase();

    const bridge = runs.bridge;
    if (scenario.fatal) {
      // Observe one more Closed cycle (or ten pull polls): nothing more may reach the server or the app.
      await sleep(2_000);
    } else {
      const lossy = (at: number): boolean => bridge.gaps.some((g) => g.from <= at && at <= g.to);
      await until(
        () => delivered.bridge.every((d) => bridge.received.includes(d.seq) || lossy(d.at)),
        `every event at the bridge app (got ${bridge.received.length} of ${delivered.bridge.length})`,
      );
      // The same time again for ews-javascript-api to catch up (measured, not asserted).
      await sleep(Math.max(1_000, (Date.now() - started) / 4));
    }
    const elapsedMs = Date.now() - started;
    const label = `${app} / ${scenario.name}: `;

    // The bridge: the process is up, nothing duplicated or reordered, nothing lost outside reported gaps.
    expect(bridge.alive, `${label}the bridge app's process stays up`).toBe(true);
    if (scenario.fatal) {
      expect(bridge.received, `${label}every event before the refusal, once, in order`).toEqual(delivered.bridge.slice(0, EVENTS_PER_PHASE).map((d) => d.seq));
      expect(bridge.errors.length, `${label}told once`).toBe(app === 'streaming' ? 1 : bridge.errors.length);
      expect(bridge.errors.length).toBeGreaterThanOrEqual(1);
      // No retries after a refusal: the server hears nothing more (the pull app's later GetEvents() reject locally).
      expect(count(sims.bridge, 'Subscribe', 'GetStreamingEvents', 'GetEvents'), `${label}no requests after the refusal`).toBe(requestsAtError);
    } else {
      const lost = expectReceivedExceptLossyGaps(bridge.received, delivered.bridge, bridge.lossyGaps, label);
      if (app === 'pull' || scenario.name.startsWith('no fault') || scenario.name === 'ErrorServerBusy' || scenario.name === 'HTTP 500') {
        // Watermarks (pull), a clean Closed, or a refused connect lose nothing.
        expect(lost, `${label}nothing lost`).toEqual([]);
      }
      expect(bridge.errors, `${label}nothing for the app to act on`).toEqual([]);
    }
    // No hot loop: a stream per Closed cycle (plus a few for the fault), a poll per pollIntervalMs.
    if (app === 'streaming') {
      expect(count(sims.bridge, 'GetStreamingEvents'), `${label}GetStreamingEvents per Closed cycle`).toBeLessThanOrEqual(Math.ceil(elapsedMs / 2_000) + 6);
      expect(count(sims.bridge, 'Subscribe'), `${label}Subscribe calls`).toBeLessThanOrEqual(scenario.name === 'lost subscription' ? 2 : 1);
    } else {
      expect(count(sims.bridge, 'GetEvents'), `${label}GetEvents per poll`).toBeLessThanOrEqual(Math.ceil(elapsedMs / 50) + 20);
      expect(count(sims.bridge, 'Subscribe'), `${label}Subscribe calls`).toBeLessThanOrEqual(scenario.name === 'lost subscription' ? 2 : 1);
    }
  } finally {
    await Promise.all([runs.bridge.stop(), runs.ews.stop()]);
    rows.push(rowOf(app, scenario.name, 'ews-push-bridge', runs.bridge, delivered.bridge, sims.bridge));
    rows.push(rowOf(app, scenario.name, 'ews-javascript-api', runs.ews, delivered.ews, sims.ews));
    await Promise.all([sims.bridge.close(), sims.ews.close()]);
  }
}

describe('the sample apps', () => {
  it('differ only in their import of ExchangeService / StreamingSubscriptionConnection', () => {
    for (const app of ['streaming-app', 'pull-app']) {
      const ews = readFileSync(new URL(`./ejs-apps/${app}.ews.ts`, import.meta.url), 'utf8').split('\n');
      const bridge = readFileSync(new URL(`./ejs-apps/${app}.bridge.ts`, import.meta.url), 'utf8').split('\n');
      expect(bridge.length).toBe(ews.length);
      const differing = ews.flatMap((line, i) => (line === bridge[i] ? [] : [i + 1]));
      expect(differing, app).toEqual([1]);
      expect(ews[0]).toMatch(/from 'ews-javascript-api';$/);
      expect(bridge[0]).toMatch(/from '\.\.\/\.\.\/adapters\/ews-javascript-api\.js';$/);
    }
  });
});

describe.each(['streaming', 'pull'] as const)('the %s sample, side by side, under faults', (app) => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
    await runScenario(app, scenario);
  }, 90_000);
});
