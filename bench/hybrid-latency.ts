/**
 * Delivery latency of the hybrid source against pure streaming, in the same run: one EwsSimulator,
 * one streaming subscriber and one hybrid subscriber (and, for reference, a pure pull subscriber)
 * on the same mailbox, every event timed from `sim.deliver()` to the subscriber's callback.
 *
 * Issue 5's bar: the hybrid median within 2× of the streaming median. Exits with code 1 when not.
 *
 *   npx tsx bench/hybrid-latency.ts [events=1000] [intervalMs=10] [pullPollMs=200]
 */
import { Subscription } from 'rxjs';
import type { PushNotification } from '../lib/model.js';
import { hybridNotifications } from '../lib/sources/hybrid.js';
import { pullNotifications } from '../lib/sources/pull.js';
import { streamingNotifications } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';

const MAILBOX = 'bench@contoso.com';
const AUTH = { type: 'basic', username: MAILBOX, password: 'x' } as const;

const [events = 1000, intervalMs = 10, pullPollMs = 200] = process.argv.slice(2).map(Number);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function main(): Promise<void> {
  const sim = await EwsSimulator.start({ keepAliveIntervalMs: 5_000 });
  const subscription = new Subscription();
  const seen = { streaming: new Map<number, number>(), hybrid: new Map<number, number>(), pull: new Map<number, number>() };
  const record = (map: Map<number, number>) => (n: PushNotification) => {
    const now = performance.now();
    for (const e of n.events) {
      const seq = sequenceOf(e);
      if (seq !== undefined && !map.has(seq)) map.set(seq, now);
    }
  };
  try {
    subscription.add(streamingNotifications({ url: sim.url, auth: AUTH }).subscribe(record(seen.streaming)));
    subscription.add(hybridNotifications({ url: sim.url, auth: AUTH, emitStatusEvents: false }).subscribe(record(seen.hybrid)));
    subscription.add(pullNotifications({ url: sim.url, auth: AUTH, emitStatusEvents: false, pollIntervalMs: pullPollMs }).subscribe(record(seen.pull)));
    while (sim.openStreamingConnections < 2 || sim.subscriptions.filter((s) => s.kind === 'pull').length < 2) await sleep(10);
    await sleep(500); // let every source settle into its steady state

    const made: { seq: number; at: number }[] = [];
    for (let i = 0; i < events; i++) {
      const at = performance.now();
      made.push({ seq: sim.deliver(MAILBOX, { type: 'NewMail' }).seq, at });
      await sleep(intervalMs);
    }
    const deadline = Date.now() + 10_000 + pullPollMs;
    while (!made.every((m) => seen.streaming.has(m.seq) && seen.hybrid.has(m.seq) && seen.pull.has(m.seq))) {
      if (Date.now() > deadline) throw new Error('not every event arrived within 10 s');
      await sleep(10);
    }

    const report: Record<string, number> = {};
    console.log(`${events} events, one every ${intervalMs} ms; latency from sim.deliver() to the subscriber, ms`);
    console.log('source      p50      p90      p99      max');
    for (const name of ['streaming', 'hybrid', 'pull'] as const) {
      const latencies = made.map((m) => seen[name].get(m.seq)! - m.at);
      const row = [50, 90, 99, 100].map((p) => percentile(latencies, p));
      report[name] = row[0]!;
      console.log(`${name.padEnd(10)} ${row.map((v) => v.toFixed(2).padStart(8)).join(' ')}${name === 'pull' ? `   (pollIntervalMs ${pullPollMs})` : ''}`);
    }
    const ratio = report.hybrid! / report.streaming!;
    const ok = ratio <= 2;
    console.log(`hybrid/streaming median ratio: ${ratio.toFixed(2)} — ${ok ? 'within' : 'NOT within'} 2×`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    subscription.unsubscribe();
    await sleep(100);
    await sim.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
