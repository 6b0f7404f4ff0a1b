/**
 * Runs the sample apps of test/ejs-apps/ — on ews-javascript-api's own classes and on the bridge's,
 * each in a process of its own (test/children/ejs-app.ts) against an EwsSimulator of its own —
 * through the same events and the same fault, and collects what each app received. Used by
 * test/adapters-ews-javascript-api-streaming.test.ts (the bridge, asserted) and
 * bench/ejs-apps-side-by-side.ts (both, as a table).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GapEvent } from '../../lib/sources/lifecycle.js';
import { EwsSimulator, type FaultSpec } from '../../lib/testing/index.js';
import { startApp, type AppReport, type AppTask } from './ejs-app-runner.js';
import { until } from './until.js';

const MAILBOX = 'alice@contoso.com';
const CHILD = fileURLToPath(new URL('../children/ejs-app.ts', import.meta.url));
export const EVENTS_PER_PHASE = 10;
const DELIVERY_INTERVAL_MS = 100;
/** 30 minutes (the samples' connection lifetime, and the bridge's default) last 2 s. */
const STREAMING_TIME_SCALE = 1 / 900;
/** The pull sample's 5-minute subscription timeout lasts 3 s. */
const PULL_TIME_SCALE = 0.01;
const PULL_APP_POLL_MS = 200;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One sample app: in a process of its own (`'child'`: a crash shows as an exit), or in this one
 * (`'in-process'`: quicker to start; an unhandled rejection fails the test run instead).
 */
export class AppProcess {
  readonly events: { seq: number; at: number }[] = [];
  readonly errors: { text: string; at: number }[] = [];
  readonly gaps: { from: number; to: number }[] = [];
  disconnects = 0;
  ready = false;
  failure: string | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess | undefined;
  private stopApp: (() => Promise<void>) | undefined;
  private stderr = '';

  constructor(task: AppTask, where: 'child' | 'in-process' = 'child') {
    if (where === 'in-process') {
      startApp(task, (report) => this.onReport(report)).then(
        (stop) => {
          this.stopApp = stop;
          this.ready = true;
        },
        (error: unknown) => (this.failure = String(error)),
      );
      return;
    }
    this.child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], silent: true, serialization: 'advanced' });
    // ews-javascript-api logs parser warnings to stdout; keep only the tail of stderr for failures.
    this.child.stdout?.resume();
    this.child.stderr?.on('data', (data: Buffer) => (this.stderr = (this.stderr + data.toString('utf8')).slice(-2000)));
    this.child.on('message', (report: AppReport) => this.onReport(report));
    this.child.on('exit', (code, signal) => (this.exit = { code, signal }));
    this.child.send(task);
  }

  private onReport(report: AppReport): void {
    if (report.type === 'ready') this.ready = true;
    else if (report.type === 'event') this.events.push({ seq: report.seq, at: report.at });
    else if (report.type === 'gap') this.gaps.push({ from: report.from, to: report.to });
    else if (report.type === 'failed') this.failure = report.error;
    else if (report.error) this.errors.push({ text: report.text, at: report.at });
    else if (report.text.includes('disconnected')) this.disconnects++;
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
    await until(() => this.ready || this.failure !== undefined || !this.alive, 'the app to start', { hangGuardMs: 120_000 });
    if (!this.ready) throw new Error(`the app did not start: ${this.failure ?? JSON.stringify(this.exit)} ${this.stderr}`);
  }

  /** How the process had ended before it was asked to stop, if it had. */
  endedByItself: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  /** Asks the app to stop (Close, Unsubscribe); waits for the process to end. */
  async stop(): Promise<void> {
    this.endedByItself ??= this.exit;
    const child = this.child;
    if (!child) {
      await this.stopApp?.();
      return;
    }
    if (this.alive) child.send('stop');
    // A grace period before SIGKILL, not an assertion: an app that does not exit is killed.
    await until(() => !this.alive, 'the app to exit', { hangGuardMs: 15_000 }).catch(() => child.kill('SIGKILL'));
  }
}

/** One fault scenario. */
export interface Scenario {
  readonly name: string;
  /** What goes wrong after the first phase of events (nothing: the Closed-every-2-s baseline). */
  readonly fault?: (operation: 'GetStreamingEvents' | 'GetEvents') => FaultSpec;
  /**
   * For which app the fault is one the app must act on (refused credentials on a stream: the
   * subscription is over). The bridge then waits for that error before phase 2, whose events are
   * not expected.
   */
  readonly fatalFor?: SampleApp;
}

/** Which sample. */
export type SampleApp = 'streaming' | 'pull';
/** Which classes it runs on. */
export type Client = 'bridge' | 'ews';

export const SCENARIOS: readonly Scenario[] = [
  { name: 'no fault (streaming: Closed every 2 s)' },
  { name: 'mid-envelope cut', fault: (operation) => ({ type: 'cut-mid-envelope', ...(operation === 'GetEvents' ? { operation } : {}) }) },
  { name: 'ErrorServerBusy', fault: (operation) => ({ type: 'server-busy', backOffMs: 500, operation }) },
  { name: 'lost subscription', fault: () => ({ type: 'forget-subscriptions' }) },
  { name: 'HTTP 500', fault: (operation) => ({ type: 'html-error-page', status: 500, operation }) },
  { name: 'HTTP 401', fault: (operation) => ({ type: 'http-401', operation }), fatalFor: 'streaming' },
];

/** What one client's run of a scenario gave. */
export interface ClientRun {
  readonly client: Client;
  readonly run: AppProcess;
  readonly sim: EwsSimulator;
  /** The events made (sequence number, parent clock). */
  readonly delivered: { seq: number; at: number }[];
  /** Requests that reach the server while the app should be silent (after a fatal error): before and after. */
  requestsAtError: number;
}

/** What a run of a scenario gave, per client. */
export interface ScenarioRun {
  readonly app: SampleApp;
  readonly scenario: Scenario;
  readonly clients: ClientRun[];
  /** From the first event made until the end of the observation. */
  elapsedMs: number;
}

/** Requests of these operations the simulator received. */
export function count(sim: EwsSimulator, ...operations: string[]): number {
  return sim.requests.filter((r) => r.operation !== undefined && operations.includes(r.operation)).length;
}

/**
 * Runs one scenario for the given clients at once: phase 1 of events, the fault, phase 2; waits
 * until the bridge's app (the first client) has every event it can have, then observes a little
 * longer (so a slower client can catch up). The processes are stopped and the simulators closed
 * before it returns (their recorded requests stay readable).
 */
export async function runScenario(app: SampleApp, scenario: Scenario, clients: readonly Client[], where: 'child' | 'in-process' = 'child'): Promise<ScenarioRun> {
  const timeScale = app === 'streaming' ? STREAMING_TIME_SCALE : PULL_TIME_SCALE;
  const operation = app === 'streaming' ? 'GetStreamingEvents' : 'GetEvents';
  const fatal = scenario.fatalFor === app;
  const runs: ClientRun[] = [];
  for (const client of clients) {
    const sim = await EwsSimulator.start({ timeScale, keepAliveIntervalMs: 200 });
    runs.push({ client, sim, run: new AppProcess({ app, variant: client, url: sim.url, pollMs: PULL_APP_POLL_MS }, where), delivered: [], requestsAtError: 0 });
  }
  const result: ScenarioRun = { app, scenario, clients: runs, elapsedMs: 0 };
  const lead = runs[0]!;
  const started = Date.now();
  try {
    await Promise.all(runs.map((r) => r.run.whenReady()));
    if (app === 'streaming') await until(() => runs.every((r) => r.sim.subscriptions.some((s) => s.connected)), 'the streams open');
    const phase = async (): Promise<void> => {
      for (let i = 0; i < EVENTS_PER_PHASE; i++) {
        for (const r of runs) {
          const at = Date.now();
          r.delivered.push({ seq: r.sim.deliver(MAILBOX, { type: 'NewMail' }).seq, at });
        }
        await sleep(DELIVERY_INTERVAL_MS);
      }
    };

    await phase();
    if (fatal) await until(() => lead.run.events.length >= EVENTS_PER_PHASE || !lead.run.alive, 'phase 1 at the first app');
    if (scenario.fault) {
      const fault = scenario.fault(operation);
      for (const r of runs) r.sim.inject(fault);
    }
    if (fatal) {
      await until(() => lead.run.errors.length > 0 || !lead.run.alive, 'the error the app must act on');
      for (const r of runs) r.requestsAtError = count(r.sim, 'Subscribe', 'GetStreamingEvents', 'GetEvents');
    }
    await phase();
    // The fault must have hit the first app's traffic (a call fault waits for the next matching call).
    const injected = scenario.fault?.(operation);
    if (injected?.type === 'cut-mid-envelope' && app === 'streaming') {
      // Envelope faults are not recorded on the request: the cut shows as a reported (lossy) gap.
      await until(() => lead.run.gaps.length > 0 || !lead.run.alive, 'the cut to hit');
    } else if (injected && injected.type !== 'forget-subscriptions' && injected.type !== 'missed-events') {
      await until(() => lead.sim.requests.some((q) => q.fault === injected.type) || !lead.run.alive, `the ${injected.type} fault to hit`);
    }

    if (fatal) {
      // Observe one more Closed cycle: nothing more may reach the server or the app.
      await sleep(2_000);
    } else {
      const lead = runs[0]!;
      const lossy = (at: number): boolean => lead.run.gaps.some((g) => g.from <= at && at <= g.to);
      await until(
        () => !lead.run.alive || lead.delivered.every((d) => lead.run.received.includes(d.seq) || lossy(d.at)),
        `every event at the first app (got ${lead.run.received.length} of ${lead.delivered.length})`,
      );
      // A quarter of the time again for the others to catch up.
      if (runs.length > 1) await sleep(Math.max(1_000, (Date.now() - started) / 4));
    }
    result.elapsedMs = Date.now() - started;
    return result;
  } finally {
    await Promise.all(runs.map((r) => r.run.stop()));
    await Promise.all(runs.map((r) => r.sim.close()));
  }
}

/** One line of the side-by-side table. */
export interface Row {
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

/** A client's run as a table row: what the app got once, twice, out of order, lost (and whether that was reported). */
export function rowOf(app: SampleApp, scenario: Scenario, r: ClientRun): Row {
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -Infinity;
  for (const seq of r.run.received) {
    if (seen.has(seq)) duplicates++;
    else if (seq < last) outOfOrder++;
    seen.add(seq);
    last = Math.max(last, seq);
  }
  const lost = r.delivered.filter((d) => !seen.has(d.seq));
  const inGaps = lost.filter((d) => r.run.gaps.some((g) => g.from <= d.at && d.at <= g.to));
  const counts = new Map<string, number>();
  for (const request of r.sim.requests) counts.set(request.operation ?? '?', (counts.get(request.operation ?? '?') ?? 0) + 1);
  return {
    app,
    scenario: scenario.name,
    client: r.client === 'bridge' ? 'ews-push-bridge' : 'ews-javascript-api',
    delivered: r.delivered.length,
    received: seen.size,
    duplicates,
    outOfOrder,
    lost: lost.length,
    lostInReportedGaps: inGaps.length,
    errorsToApp: r.run.errors.length,
    process: r.run.endedByItself === undefined ? 'up' : `exited (${r.run.endedByItself.code ?? r.run.endedByItself.signal})`,
    requests: [...counts].map(([op, n]) => `${op} ${n}`).join(', '),
  };
}
