/**
 * Latency of the streaming source against EwsSimulator on loopback:
 *
 * - delivery: `sim.deliver()` (the simulator writes the envelope) → the subscriber's `next`
 *   callback, one event at a time (no batching), over 1,000 events: p50 / p99 / max;
 * - reconnect after `Closed`: `sim.forceClose()` (the server writes `ConnectionStatus Closed` and
 *   ends the response) → the new GetStreamingEvents response is open (`connected` signal), and →
 *   the first event made right after the close reaches the subscriber; over 100 cycles.
 *
 * Simulator and client share one process and event loop, so these numbers include the
 * simulator's own work. Run: `npx tsx bench/streaming-latency.ts [events=1000] [cycles=100]`
 */
import { performance } from 'node:perf_hooks';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';

const MAILBOX = 'latency@contoso.com';

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

function summary(samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (n: number) => `${n.toFixed(2)} ms`;
  return `n=${sorted.length} p50=${f(percentile(sorted, 50))} p99=${f(percentile(sorted, 99))} max=${f(sorted.at(-1) ?? Number.NaN)}`;
}

const [eventsArg = '1000', cyclesArg = '100'] = process.argv.slice(2);
const eventCount = Number(eventsArg);
const cycles = Number(cyclesArg);

const sim = await EwsSimulator.start({ keepAliveIntervalMs: 30_000 });
const waiting = new Map<number, () => void>();
let onConnected: (() => void) | undefined;
const subscription = streamingSignals({
  url: sim.url,
  auth: { type: 'basic', username: MAILBOX, password: 'bench' },
  // The cycles close the connection milliseconds after it opened, on purpose: by default such a
  // connection counts as a failure (a flapping proxy) and the back-off grows to a minute per cycle.
  retry: { minConnectionLifetimeMs: 0 },
}).subscribe({
  next: (signal) => {
    if (signal.type === 'notification') {
      for (const event of signal.notification.events) {
        const seq = sequenceOf(event);
        if (seq !== undefined) waiting.get(seq)?.();
      }
    } else if (signal.type === 'connected') {
      onConnected?.();
    }
  },
  error: (error: unknown) => {
    console.error('source failed', error);
    process.exitCode = 1;
  },
});

const connected = () => new Promise<void>((resolve) => (onConnected = resolve));
await connected();

/** Makes one event and resolves with the time until the subscriber saw it. */
function timedEvent(): Promise<number> {
  return new Promise<number>((resolve) => {
    const started = performance.now();
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    waiting.set(seq, () => {
      waiting.delete(seq);
      resolve(performance.now() - started);
    });
  });
}

// Warm-up: JIT, sockets, parser.
for (let i = 0; i < 100; i++) await timedEvent();

const delivery: number[] = [];
for (let i = 0; i < eventCount; i++) delivery.push(await timedEvent());

const reopen: number[] = [];
const firstEvent: number[] = [];
for (let i = 0; i < cycles; i++) {
  const reconnected = connected();
  const started = performance.now();
  sim.forceClose();
  // Made while the client reconnects: the server holds it for the subscription.
  const seen = timedEvent();
  await reconnected;
  reopen.push(performance.now() - started);
  firstEvent.push(await seen);
}

console.log(`delivery (simulator write → subscriber callback): ${summary(delivery)}`);
console.log(`reconnect after Closed (→ new stream open):       ${summary(reopen)}`);
console.log(`event made at the Closed (→ subscriber callback): ${summary(firstEvent)}`);

subscription.unsubscribe();
await sim.close();
