/**
 * What gap recovery costs while nothing goes wrong (issue 15): a streaming source with a checkpoint
 * store against EwsSimulator, new mail at a steady rate, no faults. Every SyncFolderItems it sends
 * is a re-baseline (after `rebaselineEvents` item events, or `rebaselineIntervalMs` with traffic),
 * which is what bounds its delivered-set. Prints SyncFolderItems calls per second and per 1,000
 * events, and the used heap before and after (after full GCs, with `--expose-gc`; the simulator
 * shares the process and keeps every event, so that figure bounds the recovery's, it does not isolate it).
 *
 *   node --expose-gc --import tsx bench/recovery-rate.ts [eventsPerSecond=1000] [seconds=30]
 */
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator } from '../lib/testing/index.js';

const rate = Number(process.argv[2] ?? 1000) || 1000;
const seconds = Number(process.argv[3] ?? 30) || 30;
const MAILBOX = 'alice@contoso.com';
const gc = (globalThis as { gc?: () => void }).gc;
const heap = (): number => {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const sim = await EwsSimulator.start();
let received = 0;
const subscription = streamingSignals({
  url: sim.url,
  auth: { type: 'basic', username: MAILBOX, password: 'bench' },
  folders: ['inbox'],
  checkpoint: new MemoryCheckpointStore(),
}).subscribe({
  next: (signal) => {
    if (signal.type === 'notification') received += signal.notification.events.filter((e) => e.type !== 'Status').length;
  },
});
while (sim.openStreamingConnections < 1) await sleep(10);
const syncCalls = (): number => sim.requests.filter((r) => r.operation === 'SyncFolderItems').length;
const baselineCalls = syncCalls();
const heapBefore = heap();
const started = performance.now();
let made = 0;
while (performance.now() - started < seconds * 1000) {
  const due = Math.floor(((performance.now() - started) / 1000) * rate);
  while (made < due) {
    sim.deliver(MAILBOX, { type: 'NewMail' });
    made++;
  }
  await sleep(5);
}
while (received < made) await sleep(10);
const heapAfter = heap();
const calls = syncCalls() - baselineCalls;
console.log(
  `${made} events at ${rate}/s for ${seconds} s, all received; SyncFolderItems while healthy: ${calls} ` +
    `(${(calls / seconds).toFixed(2)}/s, ${((calls / made) * 1000).toFixed(2)} per 1,000 events); ` +
    `used heap ${((heapAfter - heapBefore) / 1024 / 1024).toFixed(2)} MiB above the start, the simulator's mailbox of every event included${gc ? '' : ' (no --expose-gc: not after GC)'}`,
);
subscription.unsubscribe();
await sim.close();
process.exit(0);
