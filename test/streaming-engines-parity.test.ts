/**
 * The two public streaming paths — a single source (`streamingSignals`) and a StreamingGroup
 * member — must say the same thing about the same wire input. They share one engine since issue 14
 * (the single source is a private group of one, opened at once), so this now guards the options
 * each path gives that engine. Each scenario runs a scripted session against a fresh simulator
 * through both, steps on signals (never on the clock), records the signal sequence in a normalized
 * form (keep-alives left out: they follow the simulator's timer), and compares the two.
 */
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { SourceSignal } from '../lib/sources/lifecycle.js';
import { StreamingGroup } from '../lib/sources/streaming-group.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf, type FaultSpec } from '../lib/testing/index.js';

const SERVICE = { type: 'basic', username: 'svc@contoso.com', password: 'correct horse' } as const;
const MAILBOX = 'room-001@contoso.com';
// The simulator compresses time (a 30-minute connection lasts 1.8 s) and the scenarios force
// Closed: no connection is too short to count as healthy here.
const RETRY = { minDelayMs: 20, maxDelayMs: 200, minConnectionLifetimeMs: 0 } as const;

/** A signal as the comparison sees it: what happened, without ids and times. */
function normalize(signal: SourceSignal): string | undefined {
  switch (signal.type) {
    case 'notification':
      return `notification ${signal.notification.events.map((e) => (e.type === 'Status' ? 'Status' : `${e.type}#${sequenceOf(e) ?? '?'}`)).join(',')}`;
    case 'keep-alive':
      return undefined;
    case 'subscribed':
      return signal.previousSubscriptionId === undefined ? 'subscribed' : 'subscribed again';
    case 'connected':
      return 'connected';
    case 'disconnected':
      return `disconnected ${signal.reason}${signal.error ? ` ${signal.error.code}` : ''}`;
    case 'retrying':
      return `retrying ${signal.error.code}`;
    case 'gap':
      return `gap ${signal.reason} kept=${signal.subscriptionKept} mayLose=${signal.eventsMayBeLost}`;
    default:
      return signal.type;
  }
}

/** Signals in order, with waits that resolve on the signal that satisfies them (no polling, no clock). */
class Recording {
  readonly signals: SourceSignal[] = [];
  error: unknown;
  #waiters: { test: () => boolean; resolve: () => void; reject: (e: unknown) => void }[] = [];

  push(signal: SourceSignal): void {
    this.signals.push(signal);
    this.#check();
  }

  fail(error: unknown): void {
    this.error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  count(type: SourceSignal['type']): number {
    return this.signals.filter((s) => s.type === type).length;
  }

  received(seq: number): boolean {
    return this.signals.some((s) => s.type === 'notification' && s.notification.events.some((e) => sequenceOf(e) === seq));
  }

  /** Resolves once `test()` holds (checked now and after every signal); rejects if the source errors. */
  when(test: () => boolean): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ test, resolve, reject }));
  }

  trace(): string[] {
    return this.signals.map(normalize).filter((s): s is string => s !== undefined);
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }
}

type Engine = 'single source' | 'group member';

interface Run {
  readonly sim: EwsSimulator;
  readonly rec: Recording;
  stop(): Promise<void>;
}

async function start(engine: Engine): Promise<Run> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
  const rec = new Recording();
  const observer = { next: (s: SourceSignal) => rec.push(s), error: (e: unknown) => rec.fail(e) };
  let subscription: Subscription;
  let group: StreamingGroup | undefined;
  if (engine === 'single source') {
    subscription = streamingSignals({ url: sim.url, auth: SERVICE, mailbox: MAILBOX, heartbeatTimeoutMs: 5_000, retry: RETRY }).subscribe(observer);
  } else {
    group = new StreamingGroup({ url: sim.url, auth: SERVICE, heartbeatTimeoutMs: 5_000, regroupDelayMs: 20, retry: RETRY });
    subscription = group.signals({ mailbox: MAILBOX }).subscribe(observer);
  }
  return {
    sim,
    rec,
    async stop() {
      subscription.unsubscribe();
      await group?.close();
      await sim.close();
    },
  };
}

/** One scripted session: connect, one mail, then the faults with a mail in them, then one more mail after. */
async function script(engine: Engine, faults: ReadonlyArray<FaultSpec | 'force-close'>): Promise<string[]> {
  const run = await start(engine);
  runs.push(run);
  const { sim, rec } = run;
  await rec.when(() => rec.count('connected') >= 1);
  const first = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
  await rec.when(() => rec.received(first));
  const connectedBefore = rec.count('connected');
  const gapsBefore = rec.count('gap');
  for (const fault of faults) {
    if (fault === 'force-close') sim.forceClose();
    else sim.inject(fault);
  }
  const during = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
  // The fault handled: back on a new connection, or a gap reported on the kept one.
  await rec.when(() => rec.count('connected') > connectedBefore || rec.count('gap') > gapsBefore);
  const after = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
  await rec.when(() => rec.received(after));
  // The mail made during the fault arrives, or falls in a gap that says events may be lost.
  const lossyGap = rec.signals.some((s) => s.type === 'gap' && s.eventsMayBeLost);
  expect(rec.received(during) || lossyGap, `${engine}: mail #${during} neither received nor inside a lossy gap`).toBe(true);
  await run.stop();
  return rec.trace();
}

const runs: Run[] = [];
afterEach(async () => {
  for (const run of runs.splice(0)) await run.stop().catch(() => undefined);
});

const SCENARIOS: ReadonlyArray<readonly [string, ReadonlyArray<FaultSpec | 'force-close'>]> = [
  ['ConnectionStatus Closed (the server ends the connection)', ['force-close']],
  ['GetStreamingEvents cut mid-envelope', [{ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' }]],
  ['subscription lost', [{ type: 'forget-subscriptions' }]],
  ['ErrorMissedNotificationEvents', [{ type: 'missed-events' }]],
  // A 503 shows on the next connection: end the current one so there is a next one.
  ['HTTP 503 on the next GetStreamingEvents', [{ type: 'http-503', operation: 'GetStreamingEvents' }, 'force-close']],
  ['ErrorServerBusy on the next GetStreamingEvents', [{ type: 'server-busy', backOffMs: 100, operation: 'GetStreamingEvents' }, 'force-close']],
  ['subscription lost, then ErrorServerBusy on the new Subscribe', [{ type: 'server-busy', backOffMs: 100, operation: 'Subscribe' }, { type: 'forget-subscriptions' }]],
  ['two HTTP 503 in a row on GetStreamingEvents', [{ type: 'http-503', operation: 'GetStreamingEvents', times: 2 }, 'force-close']],
];

describe('streaming engines say the same about the same wire input', () => {
  it.each(SCENARIOS)('%s', async (_name, faults) => {
    const single = await script('single source', faults);
    const member = await script('group member', faults);
    expect(member).toEqual(single);
  });
});
