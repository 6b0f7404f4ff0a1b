/**
 * Holds many idle streaming subscriptions in one process and reports what they cost (forked by
 * bench/idle-memory.ts with `--import tsx --expose-gc`). Task over IPC: {@link IdleTask}.
 *
 * - `ours`: one `streamingNotifications` subscriber per subscription — each has its own
 *   GetStreamingEvents connection (and connection pool), so N subscriptions hold N connections;
 * - `group`: one `StreamingGroup` with a member per subscription, 200 subscriptions per
 *   connection (the EWS maximum), so 1,000 subscriptions hold 5 connections;
 * - `eja`: ews-javascript-api as its users spread subscriptions: `connections`
 *   StreamingSubscriptionConnections, each carrying an equal share of the subscriptions (EWS allows
 *   up to 200 per GetStreamingEvents).
 *
 * Memory is read after two full GCs, before subscribing (client code already loaded) and once every
 * stream is open and has been idle for `settleMs`.
 */
import v8 from 'node:v8';
import { shipped } from './shipped.js';

/** What the parent sends. */
export interface IdleTask {
  readonly client: 'ours' | 'group' | 'eja';
  readonly url: string;
  readonly subscriptions: number;
  /** `eja` only: connections to spread the subscriptions over. */
  readonly connections: number;
  readonly settleMs: number;
}

/** What the child reports. */
export interface IdleReport {
  readonly type: 'idle';
  readonly client: IdleTask['client'];
  readonly subscriptions: number;
  readonly connections: number;
  readonly openMs: number;
  readonly before: MemorySample;
  readonly after: MemorySample;
}

/** One memory reading, bytes. */
export interface MemorySample {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly tcpHandles: number;
  /** Heap V8 has committed (used + young-generation room + fragmentation). */
  readonly heapCommitted: number;
}

function sample(): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  gc();
  gc();
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapUsed: v8.getHeapStatistics().used_heap_size,
    external: m.external,
    tcpHandles: process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length,
    heapCommitted: v8.getHeapStatistics().total_heap_size,
  };
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function holdOurs(task: IdleTask): Promise<number> {
  const { streamingNotifications } = await shipped();
  const { BENCH_PASSWORD, BENCH_USER } = await import('./recorder.js');
  let connected = 0;
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < task.subscriptions; i++) {
      streamingNotifications({
        url: task.url,
        auth: { type: 'basic', username: BENCH_USER, password: BENCH_PASSWORD },
        folders: ['inbox'],
        retry: { maxAttempts: 1 },
        onLifecycle: (signal) => {
          if (signal.type === 'connected' && ++connected === task.subscriptions) resolve();
        },
      }).subscribe({ error: reject });
    }
  });
  return task.subscriptions;
}

async function holdGroup(task: IdleTask): Promise<number> {
  const { StreamingGroup } = await shipped();
  const { BENCH_PASSWORD, BENCH_USER } = await import('./recorder.js');
  const group = new StreamingGroup({
    url: task.url,
    auth: { type: 'basic', username: BENCH_USER, password: BENCH_PASSWORD },
    retry: { maxAttempts: 1 },
    // The bench server does not hand subscriptions over between responses
    // (ErrorNewEventStreamConnectionOpened), so let every connection open once, full.
    regroupDelayMs: 1_000,
  });
  let connected = 0;
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < task.subscriptions; i++) {
      group
        .notifications({
          folders: ['inbox'],
          onLifecycle: (signal) => {
            if (signal.type === 'connected' && ++connected === task.subscriptions) resolve();
          },
        })
        .subscribe({ error: reject });
    }
  });
  return group.stats().streams;
}

async function holdEja(task: IdleTask): Promise<number> {
  const ews = await import('ews-javascript-api');
  const { BENCH_PASSWORD, BENCH_USER } = await import('./recorder.js');
  const perConnection = Math.ceil(task.subscriptions / task.connections);
  const opened: InstanceType<typeof ews.StreamingSubscriptionConnection>[] = [];
  const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  service.Credentials = new ews.WebCredentials(BENCH_USER, BENCH_PASSWORD);
  service.Url = new ews.Uri(task.url);
  for (let c = 0; c < task.connections; c++) {
    const subscriptions: InstanceType<typeof ews.StreamingSubscription>[] = [];
    const count = Math.min(perConnection, task.subscriptions - c * perConnection);
    // 50 Subscribe calls at a time, as a careful app would.
    for (let first = 0; first < count; first += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, count - first) }, () =>
          service.SubscribeToStreamingNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail, ews.EventType.Created, ews.EventType.Modified),
        ),
      );
      subscriptions.push(...batch);
    }
    const connection = new ews.StreamingSubscriptionConnection(service, 30);
    for (const subscription of subscriptions) connection.AddSubscription(subscription);
    connection.Open().catch(() => undefined);
    opened.push(connection);
  }
  // It reports no event when a stream opens (its header callback never fires with its own XHR
  // layer); a connection counts as open once the first bytes (the server's keep-alive) arrived.
  while (!opened.every((connection) => connection.IsOpen)) await settle(20);
  return task.connections;
}

process.once('message', (task: IdleTask) => {
  const run = async (): Promise<IdleReport> => {
    // Load the client's code first, so the baseline holds it and only subscriptions are counted.
    if (task.client === 'eja') await import('ews-javascript-api');
    else await shipped();
    const before = sample();
    const started = performance.now();
    const connections = task.client === 'ours' ? await holdOurs(task) : task.client === 'group' ? await holdGroup(task) : await holdEja(task);
    const openMs = performance.now() - started;
    await settle(task.settleMs);
    const after = sample();
    return { type: 'idle', client: task.client, subscriptions: task.subscriptions, connections, openMs, before, after };
  };
  // Exit without tearing down: the parent closes the server, and 1,000 Unsubscribes measure nothing.
  run().then(
    (report) => process.send?.(report, () => process.exit(0)),
    (error: unknown) => process.send?.({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(0)),
  );
});
