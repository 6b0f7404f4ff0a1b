/**
 * Loss-free streaming under fire (issue 15): a streaming source with a checkpoint store against
 * EwsSimulator, numbered mail arriving steadily, and many faults — cuts mid-envelope, silences,
 * lost subscriptions, dropped events (ErrorMissedNotificationEvents), server-busy on
 * SyncFolderItems, and process "restarts" (the source torn down and a new one started on the same
 * store, as after SIGKILL: whatever arrived meanwhile must come through the catch-up).
 *
 * It checks that every event made is received (live or recovered), and measures:
 * - SyncFolderItems calls per recovered gap,
 * - the time from a gap closing to its recovered events being emitted (p50/p99),
 * - duplicates (an event both streamed and recovered inside a gap window),
 * - the delivered-set: its peak size and bytes per entry (so its memory at 1,000 events/s).
 *
 *   npx tsx bench/recovery-soak.ts [faults=1000] [seed=1] [faultEveryMs=100] [no-restarts]
 *
 * test/streaming-recovery-soak.test.ts runs a short version in the default test run.
 */
import { pathToFileURL } from 'node:url';
import type { Subscription } from 'rxjs';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import type { GapEvent, SourceSignal } from '../lib/sources/lifecycle.js';
import { sourceClosed } from '../lib/sources/source-closed.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf, type FaultSpec } from '../lib/testing/index.js';
import { prng } from './stats.js';

/** Options of {@link runRecoverySoak}. */
export interface RecoverySoakOptions {
  /** Faults to inject. Default `1_000`. */
  readonly faults?: number;
  /** Milliseconds between faults. Default `40`. */
  readonly faultEveryMs?: number;
  /** New mails per second. Default `400`. */
  readonly eventsPerSecond?: number;
  /** Seed of the fault schedule. Default `1`. */
  readonly seed?: number;
  /** Include process restarts among the faults. Default `true`. */
  readonly restarts?: boolean;
  readonly log?: (line: string) => void;
}

/** What a run observed. */
export interface RecoverySoakResult {
  readonly faults: Readonly<Record<string, number>>;
  readonly made: number;
  /** Made but never received, live or recovered (must be 0). */
  readonly lost: readonly number[];
  /** Events received both live and recovered, or recovered twice. */
  readonly duplicates: number;
  /** How the duplicates arrived, in order (`LR`: live, then recovered — what a restart's catch-up repeats). */
  readonly duplicatePatterns: Readonly<Record<string, number>>;
  readonly recoveredEvents: number;
  /** Gaps reported with `recovered` (each cost one recovery run). */
  readonly recoveredGaps: number;
  /** Gaps left lossy, by `unrecoverable` reason. */
  readonly lossyGaps: Readonly<Record<string, number>>;
  readonly syncCalls: number;
  readonly syncCallsPerRecoveredGap: number;
  /** From a gap closing (its `to`) to its signal, i.e. its recovered events emitted: p50/p99/max in ms. */
  readonly gapToRecoveredMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** From an event being made to its recovered copy arriving: p50/p99/max in ms. */
  readonly recoveredLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly restarts: number;
  readonly durationMs: number;
}

const MAILBOX = 'alice@contoso.com';
const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
  return { p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(s.at(-1) ?? 0) };
}

/** Runs the soak (see the file comment). */
export async function runRecoverySoak(options: RecoverySoakOptions = {}): Promise<RecoverySoakResult> {
  const totalFaults = options.faults ?? 1_000;
  const faultEveryMs = options.faultEveryMs ?? 40;
  const rate = options.eventsPerSecond ?? 400;
  const random = prng(options.seed ?? 1);
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 50 });
  const store = new MemoryCheckpointStore();
  const madeAt = new Map<number, number>();
  const live = new Map<number, number>();
  const recovered = new Map<number, number>();
  const recoveredLatency: number[] = [];
  const gaps: { gap: GapEvent; at: number }[] = [];
  const faults: Record<string, number> = {};
  let restarts = 0;
  const trace: string[] = [];
  const order = new Map<number, string>();
  let subscription: Subscription | undefined;

  const onSignal = (signal: SourceSignal): void => {
    const now = performance.now();
    if (process.env['SOAK_TRACE'] && signal.type !== 'notification' && signal.type !== 'keep-alive') trace.push(`${Math.round(now - started)} ${signal.type}${'reason' in signal ? `(${signal.reason})` : ''}`);
    if (signal.type === 'gap') {
      gaps.push({ gap: signal, at: Date.now() });
      return;
    }
    if (signal.type !== 'notification') return;
    for (const event of signal.notification.events) {
      if (event.type === 'Status') continue;
      const seq = sequenceOf(event);
      if (seq === undefined) continue;
      order.set(seq, (order.get(seq) ?? '') + (event.recovered ? 'R' : 'L'));
      const into = event.recovered ? recovered : live;
      into.set(seq, (into.get(seq) ?? 0) + 1);
      if (event.recovered) recoveredLatency.push(now - (madeAt.get(seq) ?? now));
    }
  };
  const start = (): void => {
    subscription = streamingSignals({
      url: sim.url,
      auth: AUTH,
      folders: ['inbox'],
      eventTypes: ['NewMail'],
      checkpoint: store,
      checkpointKey: 'soak',
      heartbeatTimeoutMs: 150,
      retry: { minDelayMs: 10, maxDelayMs: 100, minConnectionLifetimeMs: 0 },
    }).subscribe({ next: onSignal, error: (error: unknown) => log(`source failed: ${String(error)}`) });
  };
  start();
  while (!sim.subscriptions.some((s) => s.connected)) await sleep(5);

  // Mail arrives steadily in the background.
  let producing = true;
  const producer = (async () => {
    let due = performance.now();
    while (producing) {
      due += 1000 / rate;
      const seq = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
      madeAt.set(seq, performance.now());
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else if (seq % 50 === 0) await sleep(0);
    }
  })();

  const kinds: readonly { name: string; weight: number; fault: () => FaultSpec | 'restart' }[] = [
    // Each call fault is valid for one fault interval (then it expires): a fault that waits for the
    // next connection would hit every reconnect and leave nothing to stream live.
    { name: 'cut-mid-envelope', weight: 4, fault: () => ({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents', times: 1, windowMs: faultEveryMs }) },
    { name: 'missed-events', weight: 3, fault: () => ({ type: 'missed-events' }) },
    { name: 'forget-subscriptions', weight: 2, fault: () => ({ type: 'forget-subscriptions' }) },
    { name: 'silence', weight: 1, fault: () => ({ type: 'silence', forMs: 200, operation: 'GetStreamingEvents', times: 1, windowMs: faultEveryMs }) },
    { name: 'sync-server-busy', weight: 1, fault: () => ({ type: 'server-busy', backOffMs: 30, operation: 'SyncFolderItems', times: 1, windowMs: 10 * faultEveryMs }) },
    { name: 'restart', weight: options.restarts === false ? 0 : 1, fault: () => 'restart' },
  ];
  const weights = kinds.reduce((n, k) => n + k.weight, 0);
  for (let i = 0; i < totalFaults; i++) {
    let pick = random() * weights;
    const kind = kinds.find((k) => (pick -= k.weight) < 0) ?? kinds[0]!;
    faults[kind.name] = (faults[kind.name] ?? 0) + 1;
    const fault = kind.fault();
    if (fault === 'restart') {
      // As after SIGKILL: the source is gone at once; a new one starts on the same store.
      const old = subscription;
      old?.unsubscribe();
      restarts++;
      await sleep(faultEveryMs);
      start();
      if (old) await sourceClosed(old);
    } else {
      sim.inject(fault);
      await sleep(faultEveryMs);
    }
    if (process.env['SOAK_TRACE']) trace.push(`${Math.round(performance.now() - started)} FAULT ${kind.name} live=${live.size}`);
    if (i % 100 === 99) log(`${i + 1} faults, ${madeAt.size} made, ${live.size} live, ${recovered.size} recovered`);
  }
  producing = false;
  await producer;
  // Let the last gap close and recover.
  const allIn = (): boolean => [...madeAt.keys()].every((seq) => live.has(seq) || recovered.has(seq));
  const deadline = performance.now() + 30_000;
  while (!allIn() && performance.now() < deadline) await sleep(20);
  // One more lossy gap flushes anything a last silent window held.
  if (!allIn()) {
    sim.inject({ type: 'missed-events' });
    await sleep(2_000);
  }
  if (process.env['SOAK_TRACE']) log(trace.join('\n'));
  const patterns: Record<string, number> = {};
  for (const o of order.values()) if (o.length > 1) patterns[o] = (patterns[o] ?? 0) + 1;
  subscription?.unsubscribe();
  if (subscription) await sourceClosed(subscription);
  const syncCalls = sim.requests.filter((r) => r.operation === 'SyncFolderItems').length;
  await sim.close();

  const lost = [...madeAt.keys()].filter((seq) => !live.has(seq) && !recovered.has(seq));
  let duplicates = 0;
  for (const seq of madeAt.keys()) if ((live.get(seq) ?? 0) + (recovered.get(seq) ?? 0) > 1) duplicates++;
  const recoveredGaps = gaps.filter((g) => g.gap.recovered !== undefined);
  const lossyGaps: Record<string, number> = {};
  for (const { gap } of gaps) if (gap.eventsMayBeLost) lossyGaps[gap.unrecoverable ?? 'unknown'] = (lossyGaps[gap.unrecoverable ?? 'unknown'] ?? 0) + 1;
  return {
    faults,
    made: madeAt.size,
    lost,
    duplicates,
    duplicatePatterns: patterns,
    recoveredEvents: [...recovered.values()].reduce((n, c) => n + c, 0),
    recoveredGaps: recoveredGaps.length,
    lossyGaps,
    syncCalls,
    syncCallsPerRecoveredGap: recoveredGaps.length === 0 ? 0 : Math.round((recoveredGaps.reduce((n, g) => n + (g.gap.recoveryRequests ?? 0), 0) / recoveredGaps.length) * 100) / 100,
    gapToRecoveredMs: percentiles(recoveredGaps.map((g) => g.at - g.gap.to.getTime())),
    recoveredLatencyMs: percentiles(recoveredLatency),
    restarts,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Bytes one delivered-set entry costs (an ItemId of Exchange's length → its ChangeKey), measured
 * by filling a Map of `n` entries shaped as the recovery keeps them.
 */
export function deliveredSetBytesPerEntry(n = 100_000): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const map = new Map<string, { changeKey: string | undefined; deleted: boolean; seq: number; folder: string | undefined }>();
  const folder = 'AAMkADAwATM0MDAAMS1iNWEzLWZhYjctMDACLTAwCgAuAAAAAAD'.padEnd(120, 'A');
  for (let i = 0; i < n; i++) {
    const id = `AAMkADAwATM0MDAAMS1iNWEzLWZhYjctMDACLTAwCgBGAAAAAAD${i.toString(36).padStart(8, '0')}`.padEnd(152, 'A');
    map.set(id, { changeKey: `CQAAABYAAAD${i.toString(36).padStart(8, '0')}AAAAA`, deleted: false, seq: i, folder });
  }
  gc?.();
  const bytes = (process.memoryUsage().heapUsed - before) / n;
  if (map.size !== n) throw new Error('unreachable');
  return Math.round(bytes);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const faults = Number(process.argv[2] ?? 1_000);
  const seed = Number(process.argv[3] ?? 1);
  const faultEveryMs = Number(process.argv[4] ?? 100);
  const restarts = process.argv[5] !== 'no-restarts';
  const result = await runRecoverySoak({ faults, seed, faultEveryMs, restarts, log: (line) => console.error(line) });
  const perEntry = deliveredSetBytesPerEntry();
  console.log(JSON.stringify({ ...result, lost: result.lost.length, lostSeqs: result.lost.slice(0, 20), deliveredSetBytesPerEntry: perEntry, deliveredSetMbAt5000Entries: Math.round((perEntry * 5_000) / 1024 / 10.24) / 100 }, null, 2));
  process.exitCode = result.lost.length === 0 ? 0 : 1;
}
