/**
 * `ews-push-bridge demo`: the whole idea in one command, with no Exchange at hand. An embedded
 * EwsSimulator plays Exchange, a legacy push listener plays the 2015 app, and the bridge holds one
 * subscription per mailbox (streaming by default) and forwards every notification as a
 * `SendNotification` POST. Mailbox events are produced at a steady rate while faults are injected
 * on purpose; loss and latency are counted at the listener by the simulator's sequence numbers.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { MemoryCheckpointStore, silentLogger } from '../lib/index.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { startMailboxBridge, type MailboxBridge } from './bridge.js';
import type { Mode } from './config-schema.js';
import { startDemoListener, sequenceOfFiled, WatchedCrm, type DemoListener } from './demo-listener.js';
import { ALICE, DEMO_FOLDERS, IN_FLIGHT_MS, MAILBOXES, SERVICE_ACCOUNT, eventFor, planFaults, type FaultRun } from './demo-scenario.js';
import { DemoNarration } from './demo-narration.js';
import { DemoStats, type LatencySummary } from './demo-stats.js';
import { LiveRegion, count, duration, latencyText, plural, renderDemoView, wrap, type FaultView, type ViewStream } from './render.js';
import { AgentTracker } from './sources.js';

/** Largest `--events`. */
export const MAX_DEMO_EVENTS = 50_000;

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Mailbox events to produce, 1–50,000. Default `2_000`. */
  readonly events?: number;
  /** How the bridge watches the mailboxes. Default `'streaming'`. */
  readonly mode?: Mode;
  /** Inject the faults (a forced Closed, a cut socket, a server-busy). Default `true`. */
  readonly faults?: boolean;
  /** Print only a JSON summary (no live view). Default `false`. */
  readonly json?: boolean;
  /** Where the view and summary go. Required. */
  readonly stdout: ViewStream;
  /**
   * With `json`: where progress goes, so a person or a CI log sees the demo working while stdout
   * stays the JSON document alone — the live view on a terminal, else a line every few seconds.
   * Default: nowhere.
   */
  readonly stderr?: ViewStream;
  /** Aborting it ends production early; the demo still shuts down cleanly and reports. Default: none. */
  readonly signal?: AbortSignal;
}

/** A fault as reported in the summary. */
export interface FaultReport {
  readonly name: string;
  readonly what: string;
  /** Milliseconds after the start of the demo. */
  readonly injectedAtMs: number | undefined;
  /** From injection until the listener received the first event produced after it, in every mailbox it hit. */
  readonly recoveredAfterMs: number | undefined;
}

/** The demo's result (what `--json` prints). */
export interface DemoSummary {
  readonly mode: Mode;
  readonly mailboxes: readonly string[];
  readonly produced: number;
  readonly delivered: number;
  readonly duplicates: number;
  /** Produced but never received (neither itself nor a later version of its item). */
  readonly lost: number;
  /**
   * Streaming: events the bridge recovered with SyncFolderItems after gaps (the sum of the gaps'
   * `recovered`), delivered like any other.
   */
  readonly recovered: number;
  /**
   * Counted as delivered although not received themselves: their item reached the listener in a
   * later version, or as deleted (a recovery reports one change per item, its latest).
   */
  readonly coalesced: number;
  /**
   * Neither received nor lost: items made and deleted again inside one reported gap, which
   * SyncFolderItems cannot report (the item no longer exists); the listener never needed them.
   */
  readonly vanishedInGaps: number;
  /** Lost events produced inside a gap the bridge reported with `eventsMayBeLost`. */
  readonly lostInReportedGaps: number;
  /** Lost events no reported gap accounts for (a bug if ever non-zero). */
  readonly lostUnexplained: number;
  /** From the mailbox event to the listener, every event. */
  readonly latencyMs: LatencySummary;
  /**
   * The same, leaving out events produced while a fault was in effect in the mailboxes it hit:
   * from just before its injection (events still queued at the server) to its recovery.
   */
  readonly steadyLatencyMs: LatencySummary;
  /** Connections that ended and were reopened, `doorbellReconnects` included. */
  readonly reconnects: number;
  /** Hybrid only: doorbell streams that ended and were reopened (its `doorbell` disconnected signals). */
  readonly doorbellReconnects: number;
  readonly gaps: number;
  readonly gapsMayHaveLostEvents: number;
  readonly faults: readonly FaultReport[];
  /** EWS subscriptions still on the simulator after the bridge closed (0: every one was unsubscribed). */
  readonly subscriptionsLeft: number;
  /** Whether production was cut short by Ctrl+C. */
  readonly interrupted: boolean;
  readonly durationMs: number;
  /** The numbers add up, nothing was lost outside a reported gap, and nothing at all with a watermark-keeping mode. */
  readonly ok: boolean;
}

// Off a terminal: how often a progress line is written.
const PROGRESS_LINE_MS = 2_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the demo and returns its summary (already printed to `options.stdout`). */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const target = options.events ?? 2_000;
  if (!Number.isInteger(target) || target < 1 || target > MAX_DEMO_EVENTS) throw new RangeError(`events must be 1–${count(MAX_DEMO_EVENTS)} (got ${typeof target === 'number' ? target : JSON.stringify(target)})`);
  const mode = options.mode ?? 'streaming';
  const json = options.json ?? false;
  const out = options.stdout;
  const region = new LiveRegion(json ? (options.stderr ?? { write: () => true }) : out);
  const width = region.width;

  const t0 = performance.now();
  const wallToPerf = (date: Date): number => date.getTime() - (Date.now() - performance.now());
  const stats = new DemoStats(t0);
  const recent: string[] = [];
  const log = (text: string): void => {
    const prefix = `${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s  `;
    const lines = wrap(text, width - prefix.length, '').map((line, i) => `${i === 0 ? prefix : ' '.repeat(prefix.length)}${line}`);
    recent.push(...lines);
    recent.splice(0, Math.max(0, recent.length - 6));
    for (const line of lines) region.log(line);
  };

  const narration = new DemoNarration(stats, log, wallToPerf);
  const faults: FaultRun[] = (options.faults ?? true ? planFaults(mode) : []).map((plan) => ({
    plan,
    injectedAt: undefined,
    after: new Map(),
    waiting: new Set(plan.mailboxes),
    recoveredAt: undefined,
  }));
  let phase = 'starting the simulator, the legacy listener and the bridge';
  let produced = 0;
  const lastSeq = new Map<string, number>();
  const { connected, subscriptionMailbox } = narration;

  const view = (): string[] =>
    renderDemoView(
      {
        title: `ews-push-bridge demo · ${mode} · EwsSimulator → bridge → legacy listener`,
        target,
        produced,
        delivered: stats.deliveredCount,
        duplicates: stats.duplicates,
        latency: stats.latency(),
        reconnects: stats.reconnects + narration.doorbells,
        gaps: stats.gaps.length,
        gapsMayLose: stats.gaps.filter((g) => g.eventsMayBeLost).length,
        faults: faults.map((f): FaultView => ({ name: f.plan.name, state: f.recoveredAt !== undefined ? 'recovered' : f.injectedAt !== undefined ? 'injected' : 'pending' })),
        phase,
        recent,
      },
      width,
    );

  // Streaming keeps its SyncFolderItems states here (one key per mailbox).
  const recoveryStore = new MemoryCheckpointStore();
  const onReceived = (mailbox: string, seq: number, at: number, type: string): void => {
    stats.receive(mailbox, seq, at, type);
    for (const fault of faults) {
      if (fault.injectedAt === undefined || fault.recoveredAt !== undefined || !fault.waiting.has(mailbox)) continue;
      if (seq <= (fault.after.get(mailbox) ?? 0)) continue;
      fault.waiting.delete(mailbox);
      if (fault.waiting.size === 0) {
        fault.recoveredAt = at;
        log(`recovered from ${fault.plan.name}: events flow again after ${duration(at - fault.injectedAt)}`);
      }
    }
  };

  let sim: EwsSimulator | undefined;
  let listener: DemoListener | undefined;
  const bridges: MailboxBridge[] = [];
  const tracker = new AgentTracker();
  let ticker: NodeJS.Timeout | undefined;
  let interrupted = false;
  let subscriptionsLeft = -1;
  let failure: unknown;
  const stopRequested = (): boolean => {
    if (options.signal?.aborted && !interrupted) {
      interrupted = true;
      log('interrupted: stopping early');
    }
    return interrupted || bridges.some((b) => b.state === 'failed');
  };

  try {
    const password = randomBytes(18).toString('base64url');
    sim = await EwsSimulator.start({ users: { [SERVICE_ACCOUNT]: password } });
    const simulator = sim;
    listener = await startDemoListener(
      new WatchedCrm((filed, at) => {
        const seq = sequenceOfFiled(filed);
        const mailbox = subscriptionMailbox.get(filed.subscriptionId);
        // A deletion recovered by SyncFolderItems names the item but no version.
        if (seq === undefined && mailbox !== undefined && filed.type === 'Deleted' && filed.kind === 'item') stats.receiveDeletion(mailbox, filed.id);
        else if (seq === undefined || mailbox === undefined) stats.unknown++;
        else onReceived(mailbox, seq, at, filed.type);
      }),
    );
    if (region.interactive) ticker = setInterval(() => region.update(view()), 100);
    // Off a terminal, a line now and then, so a long run never looks hung.
    else ticker = setInterval(() => log(`${phase}: ${count(produced)} of ${count(target)} produced, ${count(stats.deliveredCount)} delivered`), PROGRESS_LINE_MS);
    for (const mailbox of MAILBOXES) {
      bridges.push(
        startMailboxBridge({
          source: {
            mode,
            url: simulator.url,
            auth: { type: 'basic', username: SERVICE_ACCOUNT, password },
            mailbox,
            // Streaming watches the folders the events touch and keeps SyncFolderItems states in a
            // store, so every gap is recovered; pull and hybrid resume from watermarks anyway.
            folders: mode === 'streaming' ? DEMO_FOLDERS : [],
            subscribeToAllFolders: mode !== 'streaming',
            eventTypes: undefined,
            ...(mode === 'streaming' ? { checkpoint: recoveryStore } : {}),
            // Pull polls briskly for the demo; hybrid's poll is only the safety net behind the doorbell.
            pollIntervalMs: mode === 'pull' ? 200 : mode === 'hybrid' ? 2_000 : undefined,
            // The demo compresses hours into seconds: its forced Closed, half a second into a
            // connection, stands for Exchange's 30-minute ConnectionTimeout, which is no flapping
            // proxy. `forward` keeps the default (a connection under 1 s is a failure).
            retry: { minConnectionLifetimeMs: 0 },
            logger: silentLogger,
          },
          listener: { url: listener.url },
          statusFrequencyMinutes: 1,
          tracker,
          logger: silentLogger,
          observer: { lifecycle: (event) => narration.onLifecycle(mailbox, event) },
        }),
      );
    }
    log(`EwsSimulator at ${simulator.url}; the 2015 push listener of examples/legacy-listener at ${listener.url}`);

    // Start producing once every mailbox is subscribed, so the first events have somewhere to go.
    const readyBy = performance.now() + 15_000;
    while (connected.size < MAILBOXES.length && performance.now() < readyBy && !stopRequested()) await sleep(20);
    if (connected.size < MAILBOXES.length && !stopRequested()) throw new Error('The bridge did not connect to the simulator within 15 s');

    // At least 400 events per second, faster for big runs, so production takes at most 20 s.
    const rate = Math.max(400, target / 20);
    phase = `producing ${count(target)} events at ${count(rate)}/s into ${MAILBOXES.join(' and ')}`;
    const start = performance.now();
    let nextFault = 0;
    while (produced < target && !stopRequested()) {
      const due = Math.min(target, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      while (produced < due) {
        const mailbox = MAILBOXES[produced % MAILBOXES.length] ?? ALICE;
        const at = performance.now();
        const delivered = simulator.deliver(mailbox, eventFor(Math.floor(produced / MAILBOXES.length)));
        const old = 'oldItemId' in delivered ? delivered.oldItemId?.id : undefined;
        const items = [delivered.itemId?.id, old].filter((id): id is string => id !== undefined);
        const deletes = delivered.type === 'Deleted' && delivered.itemId ? [delivered.itemId.id] : delivered.type === 'Moved' && old !== undefined ? [old] : [];
        stats.produce(mailbox, delivered.seq, at, items, deletes);
        lastSeq.set(mailbox, delivered.seq);
        produced++;
        const fault = faults[nextFault];
        if (fault && produced >= Math.ceil(fault.plan.at * target)) {
          nextFault++;
          for (const m of fault.plan.mailboxes) fault.after.set(m, lastSeq.get(m) ?? 0);
          fault.injectedAt = performance.now();
          log(`fault: ${fault.plan.name} — ${fault.plan.what}`);
          fault.plan.inject(simulator);
        }
      }
      await sleep(10);
    }

    phase = 'waiting for the last deliveries';
    const producedAll = performance.now();
    const quietMs = mode === 'streaming' ? 1_500 : mode === 'pull' ? 2_000 : 3_000;
    const drainBy = producedAll + 20_000;
    while (stats.missing > 0 && !stopRequested()) {
      const now = performance.now();
      if (now > drainBy || now - Math.max(stats.lastReceiptAt, producedAll, narration.retryDueAt) > quietMs) break;
      await sleep(25);
    }
    const failed = bridges.find((b) => b.state === 'failed');
    if (failed) failure = failed.fatalError;
  } catch (error) {
    failure = error;
  } finally {
    phase = 'closing the subscriptions (EWS Unsubscribe)';
    await Promise.all(bridges.map((b) => b.close()));
    await tracker.allDestroyed(7_000);
    if (sim) subscriptionsLeft = sim.subscriptions.length;
    phase = 'done';
    if (ticker) clearInterval(ticker);
    region.update(view());
    region.finish();
    await listener?.close();
    await sim?.close();
  }
  if (failure !== undefined) throw failure;

  const summary = summarize({ mode, stats, narration, faults, t0, subscriptionsLeft, interrupted });
  out.write(json ? `${JSON.stringify(summary, null, 2)}\n` : `\n${summaryText(summary, width).join('\n')}\n`);
  return summary;
}

/** The numbers of a finished run, and whether they add up. */
function summarize(run: {
  readonly mode: Mode;
  readonly stats: DemoStats;
  readonly narration: DemoNarration;
  readonly faults: readonly FaultRun[];
  readonly t0: number;
  readonly subscriptionsLeft: number;
  readonly interrupted: boolean;
}): DemoSummary {
  const { mode, stats, narration, faults, t0, subscriptionsLeft, interrupted } = run;
  const losses = stats.losses();
  const gapsMayLose = stats.gaps.filter((g) => g.eventsMayBeLost).length;
  return {
    mode,
    mailboxes: [...MAILBOXES],
    produced: stats.producedCount,
    delivered: stats.deliveredCount + losses.coalesced,
    duplicates: stats.duplicates,
    lost: losses.lost,
    recovered: narration.recovered,
    coalesced: losses.coalesced,
    vanishedInGaps: losses.vanished,
    lostInReportedGaps: losses.inReportedGaps,
    lostUnexplained: losses.unexplained,
    latencyMs: roundLatency(stats.latency()),
    steadyLatencyMs: roundLatency(
      stats.latency((mailbox, producedAt) =>
        faults.every(
          (f) =>
            f.injectedAt === undefined ||
            !f.plan.mailboxes.includes(mailbox) ||
            producedAt < f.injectedAt - IN_FLIGHT_MS ||
            producedAt > (f.recoveredAt ?? Infinity),
        ),
      ),
    ),
    reconnects: stats.reconnects + narration.doorbells,
    doorbellReconnects: narration.doorbells,
    gaps: stats.gaps.length,
    gapsMayHaveLostEvents: gapsMayLose,
    faults: faults.map((f) => ({
      name: f.plan.name,
      what: f.plan.what,
      injectedAtMs: f.injectedAt === undefined ? undefined : Math.round(f.injectedAt - t0),
      recoveredAfterMs: f.recoveredAt === undefined || f.injectedAt === undefined ? undefined : Math.round(f.recoveredAt - f.injectedAt),
    })),
    subscriptionsLeft,
    interrupted,
    durationMs: Math.round(performance.now() - t0),
    ok:
      stats.unknown === 0 &&
      losses.unexplained === 0 &&
      (mode === 'streaming' || losses.lost === 0) &&
      stats.producedCount === stats.deliveredCount + losses.coalesced + losses.vanished + losses.lost &&
      subscriptionsLeft === 0,
  };
}

function roundLatency(l: LatencySummary): LatencySummary {
  const r = (ms: number): number => Math.round(ms * 100) / 100;
  return { p50: r(l.p50), p90: r(l.p90), p99: r(l.p99), max: r(l.max) };
}

/** The human summary, wrapped to `width`. */
export function summaryText(s: DemoSummary, width: number): string[] {
  const lines: string[] = [];
  const para = (text: string): void => void lines.push(...wrap(text, width, '  '));
  para(
    `${plural(s.produced, 'event')} produced, ${count(s.delivered)} delivered, ${count(s.lost)} lost` +
      (s.recovered > 0 ? ` (${count(s.recovered)} recovered after gaps${s.vanishedInGaps > 0 ? `, ${count(s.vanishedInGaps)} deleted before recovery` : ''})` : '') +
      `, p99 ${duration(s.latencyMs.p99)}, ${plural(s.reconnects, 'reconnect')}`,
  );
  para(`Mode ${s.mode}, ${s.mailboxes.length} mailboxes, ${plural(s.duplicates, 'duplicate')} delivered, ${plural(s.gaps, 'gap')} reported.`);
  para(
    `Latency from the mailbox event to the legacy listener: ${latencyText(s.latencyMs)}` +
      (s.faults.some((f) => f.injectedAtMs !== undefined) ? `; outside the fault recoveries: ${latencyText(s.steadyLatencyMs)}.` : '.'),
  );
  for (const f of s.faults) {
    const outcome =
      f.injectedAtMs === undefined ? 'not reached' : f.recoveredAfterMs === undefined ? 'no event arrived after it' : `events flowed again after ${duration(f.recoveredAfterMs)}`;
    para(`Fault "${f.name}": ${f.what} — ${outcome}.`);
  }
  if (s.lostUnexplained > 0) {
    para(`${plural(s.lostUnexplained, 'event was', 'events were')} lost outside any gap the bridge reported. That is a bug: please report it with this output.`);
  } else if (s.lost > 0) {
    para(
      `The ${plural(s.lost, 'lost event')} ${s.lost === 1 ? 'was' : 'were'} all inside the ${plural(s.gapsMayHaveLostEvents, 'gap')} the bridge reported with "events may have been lost": ` +
        'streaming events carry no watermark, so what the server wrote into a connection that was cut is gone. ' +
        'Try "npm run demo -- --mode hybrid": the same faults, and it resumes from the watermark.',
    );
  } else if (s.reconnects === 0) {
    para('Nothing lost.');
  } else if (s.mode === 'streaming' && s.recovered > 0) {
    para(
      `Nothing lost: what the cut connections carried was recovered with SyncFolderItems from the stored sync states (${plural(s.recovered, 'event')}` +
        (s.coalesced > 0 ? `; ${plural(s.coalesced, 'earlier change')} folded into a later version of the same item` : '') +
        (s.vanishedInGaps > 0 ? `; ${plural(s.vanishedInGaps, 'event')} of items made and deleted inside a gap, which no longer exist to report` : '') +
        ').',
    );
  } else if (s.mode === 'streaming') {
    para('Nothing lost: every reconnect resumed the same subscription, which held its events meanwhile.');
  } else {
    para('Nothing lost: every recovery resumed from the last watermark the listener had acknowledged.');
  }
  para(
    s.subscriptionsLeft === 0
      ? 'On exit every EWS subscription was removed (Unsubscribe).'
      : `On exit ${plural(s.subscriptionsLeft, 'EWS subscription was', 'EWS subscriptions were')} still on the server.`,
  );
  if (s.interrupted) para('Interrupted before every event was produced.');
  return lines;
}
