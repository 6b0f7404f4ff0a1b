/**
 * Soak test of the streaming source: a scaled "8 hours" against EwsSimulator with random faults
 * (socket cuts, silences, throttling, 503s, forgotten subscriptions, dropped events, forced
 * closes) while events keep happening. It checks what must hold however long the source runs:
 * no duplicate, no loss outside a reported gap, no growing handle/socket/listener count, no
 * unhandled rejection or uncaught exception, and a clean teardown.
 *
 * Run the long version (8 scaled hours in 10 real minutes by default):
 *
 *   npx tsx bench/soak-streaming.ts [realMinutes=10] [scaledHours=8] [seed=1]
 *
 * test/streaming-soak.test.ts runs a short version (a few seconds) in the default test run.
 */
import type { Agent } from 'node:http';
import { getEventListeners } from 'node:events';
import { pathToFileURL } from 'node:url';
import { createEwsAgent } from '../lib/ews/transport.js';
import type { GapEvent, SourceLifecycleEvent } from '../lib/sources/lifecycle.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf, type FaultSpec } from '../lib/testing/index.js';
import { prng } from './stats.js';

/** Options of {@link runStreamingSoak}. */
export interface SoakOptions {
  /** Real time the soak runs. Required. */
  readonly durationMs: number;
  /** Protocol time it stands for (the simulator's timeScale follows). Default `8`. */
  readonly scaledHours?: number;
  /** Seed of the fault schedule, so a failing run can be replayed. Default `1`. */
  readonly seed?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
  /** Keep a timeline of deliveries, faults and lifecycle signals in the result, to debug a failure. Default `false`. */
  readonly trace?: boolean;
}

/** One resource sample. */
export interface SoakSample {
  readonly atMs: number;
  /** `process.getActiveResourcesInfo()` length. */
  readonly handles: number;
  readonly tcpSockets: number;
  readonly timeouts: number;
  /** Sockets the source's agent holds (in use + free). */
  readonly agentSockets: number;
  /** Listeners on the consumer's AbortSignal. */
  readonly signalListeners: number;
  readonly heapUsedMb: number;
}

/** What a soak run observed. */
export interface SoakResult {
  readonly timeScale: number;
  readonly delivered: number;
  readonly received: number;
  /** Events lost inside reported lossy gaps (legitimate). */
  readonly lostInGaps: number;
  /** Events lost outside every reported gap (must be 0). */
  readonly lostUnreported: readonly number[];
  readonly duplicates: number;
  /** Received out of wire order (must be 0). */
  readonly outOfOrder: number;
  readonly faults: Readonly<Record<string, number>>;
  readonly lifecycle: Readonly<Record<string, number>>;
  readonly samples: readonly SoakSample[];
  readonly unhandled: readonly string[];
  /** Set when the source errored (it must not). */
  readonly sourceError: string | undefined;
  /** Resource counts after teardown minus before the source started. */
  readonly leftover: { readonly tcpSockets: number; readonly timeouts: number };
  /** The timeline, when `trace` was set. */
  readonly trace: readonly string[];
}

const MAILBOX = 'soak@contoso.com';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (list: readonly string[], type: string) => list.filter((x) => x === type).length;

/** Runs one soak; never throws for a property violation — the result says what went wrong. */
export async function runStreamingSoak(options: SoakOptions): Promise<SoakResult> {
  const scaledHours = options.scaledHours ?? 8;
  const timeScale = options.durationMs / (scaledHours * 3_600_000);
  const random = prng(options.seed ?? 1);
  const log = options.log ?? (() => {});
  // Protocol durations, scaled, with floors so a loaded 2-core machine's event-loop stalls are not
  // mistaken for dead connections all the time.
  const keepAliveMs = Math.max(30_000 * timeScale, 25);
  const heartbeatMs = Math.max(90_000 * timeScale, 250);
  const stepMs = Math.max(60_000 * timeScale, 15);

  const unhandled: string[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(`unhandledRejection: ${String(reason)}`);
  const onUncaught = (error: unknown) => unhandled.push(`uncaughtException: ${String(error)}`);
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUncaught);

  const sim = await EwsSimulator.start({ timeScale, keepAliveIntervalMs: keepAliveMs });
  const baseline = process.getActiveResourcesInfo();
  const controller = new AbortController();
  let agent: Agent | undefined;
  const delivered: { seq: number; at: number }[] = [];
  const received: number[] = [];
  const gaps: GapEvent[] = [];
  const lifecycle: Record<string, number> = {};
  const faults: Record<string, number> = {};
  const samples: SoakSample[] = [];
  let sourceError: string | undefined;
  let completed = false;
  const trace: string[] = [];
  const t0 = Date.now();
  const note = (line: string) => {
    if (options.trace) trace.push(`${Date.now() - t0} ${line}`);
  };

  const subscription = streamingSignals({
    url: sim.url,
    auth: { type: 'basic', username: MAILBOX, password: 'soak' },
    // 30 minutes, scaled: the server closes every connection on schedule too.
    connectionTimeoutMinutes: 30,
    heartbeatTimeoutMs: heartbeatMs,
    retry: { minDelayMs: 10, maxDelayMs: 200 },
    signal: controller.signal,
    createAgent: () => (agent = createEwsAgent({ url: sim.url })),
  }).subscribe({
    next: (signal) => {
      if (signal.type === 'notification') {
        for (const e of signal.notification.events) {
          const seq = sequenceOf(e);
          if (seq !== undefined) received.push(seq);
        }
        note(`got ${signal.notification.events.map((e) => sequenceOf(e)).join(',')}`);
        return;
      }
      const event: SourceLifecycleEvent = signal;
      const key = 'reason' in event ? `${event.type}:${event.reason}` : event.type;
      lifecycle[key] = (lifecycle[key] ?? 0) + 1;
      if (event.type !== 'keep-alive') {
        const detail =
          event.type === 'gap'
            ? ` ${event.from.getTime() - t0}..${event.to.getTime() - t0} lossy=${event.eventsMayBeLost}`
            : 'error' in event && event.error
              ? ` ${event.error.message}${event.type === 'retrying' ? ` wait=${event.delayMs}` : ''}`
              : '';
        note(key + detail);
      }
      if (event.type === 'gap') gaps.push(event);
    },
    error: (error: unknown) => {
      sourceError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    },
    complete: () => {
      completed = true;
    },
  });

  const deliver = () => {
    const at = Date.now();
    delivered.push({ seq: sim.deliver(MAILBOX, { type: random() < 0.7 ? 'NewMail' : 'Modified' }).seq, at });
    note(`deliver ${delivered.at(-1)?.seq}`);
  };
  const inject = (name: string, fault: FaultSpec | 'force-close') => {
    faults[name] = (faults[name] ?? 0) + 1;
    note(`fault ${name}`);
    if (fault === 'force-close') sim.forceClose();
    else sim.inject(fault);
  };
  const sample = (startedAt: number) => {
    const info = process.getActiveResourcesInfo();
    const agentSockets = agent
      ? Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0) +
        Object.values(agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0)
      : 0;
    samples.push({
      atMs: Date.now() - startedAt,
      handles: info.length,
      tcpSockets: count(info, 'TCPSocketWrap'),
      timeouts: count(info, 'Timeout'),
      agentSockets,
      signalListeners: getEventListeners(controller.signal, 'abort').length,
      heapUsedMb: Math.round((process.memoryUsage().heapUsed / 1_048_576) * 10) / 10,
    });
  };

  // Events only count once the first subscription exists.
  const readyBy = Date.now() + 10_000;
  while ((lifecycle['connected'] ?? 0) === 0 && sourceError === undefined && Date.now() < readyBy) await sleep(5);

  // A fault hits the next matching call or envelope soon, or never: unconsumed faults must not pile
  // up while the source is between connections (that would test the fault queue, not the source).
  const once = { times: 1, windowMs: stepMs * 4 } as const;
  const startedAt = Date.now();
  let nextSampleAt = startedAt;
  const sampleEveryMs = Math.max(options.durationMs / 40, 100);
  while (Date.now() - startedAt < options.durationMs && sourceError === undefined) {
    const roll = random();
    if (roll < 0.8) {
      const n = 1 + Math.floor(random() * 3);
      for (let i = 0; i < n; i++) deliver();
    } else if (roll < 0.83) inject('cut-mid-envelope', { type: 'cut-mid-envelope', ...once });
    else if (roll < 0.85) inject('silence', { type: 'silence', forMs: heartbeatMs * 1.5, ...once });
    else if (roll < 0.875) inject('server-busy', { type: 'server-busy', backOffMs: Math.round(heartbeatMs / 4), operation: 'GetStreamingEvents', ...once });
    else if (roll < 0.9) inject('http-503', { type: 'http-503', operation: random() < 0.5 ? 'GetStreamingEvents' : 'Subscribe', ...once });
    else if (roll < 0.92) inject('forget-subscriptions', { type: 'forget-subscriptions' });
    else if (roll < 0.93) inject('missed-events', { type: 'missed-events' });
    else if (roll < 0.96) inject('force-close', 'force-close');
    // else: a quiet step
    if (Date.now() >= nextSampleAt) {
      sample(startedAt);
      nextSampleAt += sampleEveryMs;
      log(`t=${Math.round((Date.now() - startedAt) / 1000)}s delivered=${delivered.length} received=${received.length} ${JSON.stringify(samples.at(-1))}`);
    }
    await sleep(stepMs * (0.5 + random()));
  }

  // Quiesce: no new faults; wait until every event is received or inside a reported lossy gap.
  sim.clearFaults();
  const accounted = () => {
    const got = new Set(received);
    return delivered.every((d) => got.has(d.seq) || gaps.some((g) => g.eventsMayBeLost && g.from.getTime() <= d.at && d.at <= g.to.getTime()));
  };
  const quiesceUntil = Date.now() + Math.max(5_000, heartbeatMs * 4);
  while (!accounted() && Date.now() < quiesceUntil && sourceError === undefined) await sleep(20);
  sample(startedAt);

  const got = new Set(received);
  const lostInGaps: number[] = [];
  const lostUnreported: number[] = [];
  for (const d of delivered) {
    if (got.has(d.seq)) continue;
    if (gaps.some((g) => g.eventsMayBeLost && g.from.getTime() <= d.at && d.at <= g.to.getTime())) lostInGaps.push(d.seq);
    else lostUnreported.push(d.seq);
  }
  let outOfOrder = 0;
  for (let i = 1; i < received.length; i++) if ((received[i] ?? 0) <= (received[i - 1] ?? 0)) outOfOrder++;

  // Teardown: abort → complete → Unsubscribe → agent destroyed.
  controller.abort();
  const teardownUntil = Date.now() + 5_000;
  while (Date.now() < teardownUntil && !(completed && sim.requests.some((r) => r.operation === 'Unsubscribe'))) await sleep(10);
  subscription.unsubscribe();
  const settleUntil = Date.now() + 3_000;
  const leftoverNow = () => {
    const info = process.getActiveResourcesInfo();
    return {
      tcpSockets: count(info, 'TCPSocketWrap') - count(baseline, 'TCPSocketWrap'),
      timeouts: count(info, 'Timeout') - count(baseline, 'Timeout'),
    };
  };
  while (Date.now() < settleUntil) {
    const left = leftoverNow();
    if (left.tcpSockets <= 0 && left.timeouts <= 0) break;
    await sleep(20);
  }
  const leftover = leftoverNow();
  await sim.close();
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUncaught);

  return {
    timeScale,
    delivered: delivered.length,
    received: received.length,
    lostInGaps: lostInGaps.length,
    lostUnreported,
    duplicates: received.length - got.size,
    outOfOrder,
    faults,
    lifecycle,
    samples,
    unhandled,
    sourceError,
    leftover,
    trace,
  };
}

/**
 * Whether a sampled series grows: the peak of its last third clearly above the peak of its first
 * third (reconnects make handles come and go, so single samples are noisy).
 */
export function grows(values: readonly number[], slack: number): boolean {
  if (values.length < 6) return false;
  const third = Math.floor(values.length / 3);
  const early = Math.max(...values.slice(0, third));
  const late = Math.max(...values.slice(-third));
  return late > early + slack;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [minutes = '10', hours = '8', seed = '1'] = process.argv.slice(2);
  const result = await runStreamingSoak({
    durationMs: Number(minutes) * 60_000,
    scaledHours: Number(hours),
    seed: Number(seed),
    log: (line) => console.log(line),
  });
  const { samples, trace: _trace, ...summary } = result;
  console.log(JSON.stringify(summary, null, 2));
  const handlesGrow = grows(samples.map((s) => s.handles), 6);
  const heapGrows = grows(samples.map((s) => s.heapUsedMb), 20);
  const ok =
    result.sourceError === undefined &&
    result.lostUnreported.length === 0 &&
    result.duplicates === 0 &&
    result.outOfOrder === 0 &&
    result.unhandled.length === 0 &&
    !handlesGrow &&
    result.leftover.tcpSockets <= 0 &&
    result.leftover.timeouts <= 0;
  console.log(`handles grow: ${handlesGrow}, heap grows: ${heapGrows}`);
  console.log(ok ? 'SOAK OK' : 'SOAK FAILED');
  process.exitCode = ok ? 0 : 1;
}
