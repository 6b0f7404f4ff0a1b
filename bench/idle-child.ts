/**
 * Holds many idle streaming subscriptions in one process and reports what they cost (forked by
 * bench/idle-memory.ts with `--import tsx --expose-gc`; the server runs in another process,
 * bench/sim-child.ts). Task over IPC: {@link IdleTask}.
 *
 * Both clients do the same thing, the way a service that watches many mailboxes does:
 *
 * - every subscription impersonates its own mailbox (`room-00000@contoso.com`, …), and every
 *   GetStreamingEvents impersonates the first one (the anchor), with `X-AnchorMailbox` set to it;
 * - Subscribe requests go out `concurrency` at a time (the StreamingGroup default,
 *   `maxConcurrentSubscribes` 8, for both);
 * - 200 subscriptions per GetStreamingEvents connection (the EWS maximum);
 * - `group`: one `StreamingGroup` with its default options (only url and auth given), a member per
 *   mailbox through `group.notifications({ mailbox, onLifecycle })` with one listener and one
 *   observer shared by all members;
 * - `eja`: ews-javascript-api: one ExchangeService subscribes every mailbox (its ImpersonatedUserId
 *   set before each Subscribe, which writes its XML synchronously), and an anchor ExchangeService
 *   (impersonating the anchor) carries a StreamingSubscriptionConnection per 200 subscriptions.
 *
 * What each client needs before its first subscription (the group object, the services) is made
 * before the baseline reading, so only subscriptions are counted. Memory is read after two full
 * GCs: at the baseline, then once the first `steps[0]` subscriptions are connected and idle for
 * `settleMs`, then after each further step. After each step's report the child waits for the
 * parent's `{ type: 'continue' }` (the parent reads the server's counts meanwhile).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { shipped } from './shipped.js';

/** What the parent sends. */
export interface IdleTask {
  readonly client: 'group' | 'eja';
  readonly url: string;
  /** Cumulative subscription counts to read memory at, ascending (`[2000, 10000]`). */
  readonly steps: readonly number[];
  /** Subscribe requests in flight at once (ews-javascript-api; the group uses its default). */
  readonly concurrency: number;
  readonly settleMs: number;
  /** Write a heap snapshot at every step into this directory. Default: none. */
  readonly snapshotDir?: string;
}

/** The reading after one step. */
export interface IdleStep {
  readonly type: 'step';
  readonly client: IdleTask['client'];
  /** Subscriptions held (cumulative). */
  readonly subscriptions: number;
  /** GetStreamingEvents connections the client holds. */
  readonly connections: number;
  /** From the step's first Subscribe to its last answer, ms. */
  readonly subscribeMs: number;
  /** From the step's first Subscribe until every subscription was connected, ms. */
  readonly connectMs: number;
  /** CPU time this process used for the step's subscribing and connecting (user + system), ms. */
  readonly cpuMs: number;
  readonly before: MemorySample;
  readonly after: MemorySample;
  /** The heap snapshot written, if asked. */
  readonly snapshot?: string;
}

/** One memory reading, bytes. */
export interface MemorySample {
  /** Resident set size now (process.memoryUsage().rss: this process only). */
  readonly rss: number;
  /**
   * This process's peak RSS (VmHWM of /proc/self/status; 0 where there is none). Not
   * `process.resourceUsage().maxRSS`: in a forked child that starts from the parent's peak.
   */
  readonly peakRss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly tcpHandles: number;
  /** Heap V8 has committed (used + young-generation room + fragmentation). */
  readonly heapCommitted: number;
}

/** Mailbox `i` of the bench. */
export const mailboxOf = (i: number): string => `room-${String(i).padStart(5, '0')}@contoso.com`;

function peakRss(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function sample(): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  gc();
  gc();
  const m = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  return {
    rss: m.rss,
    peakRss: peakRss(),
    heapUsed: heap.used_heap_size,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    tcpHandles: process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length,
    heapCommitted: heap.total_heap_size,
  };
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that subscribes mailboxes `from … to-1` and reports when they are subscribed and connected. */
interface Holder {
  add(from: number, to: number): Promise<{ subscribeMs: number; connectMs: number }>;
  connections(): number;
}

async function groupHolder(task: IdleTask): Promise<Holder> {
  const { StreamingGroup } = await shipped();
  const { BENCH_PASSWORD, BENCH_USER } = await import('./recorder.js');
  // Its default options: 200 per connection, 8 Subscribes at a time, regroupDelayMs 100 (only
  // `IDLE_CONCURRENCY` changes the concurrency, for both clients).
  const group = new StreamingGroup({
    url: task.url,
    auth: { type: 'basic', username: BENCH_USER, password: BENCH_PASSWORD },
    ...(task.concurrency === 8 ? {} : { maxConcurrentSubscribes: task.concurrency }),
  });
  const configured = (group as unknown as { options: { maxConcurrentSubscribes: number } }).options.maxConcurrentSubscribes;
  if (configured !== task.concurrency) throw new Error(`the group's default maxConcurrentSubscribes is ${configured}, the bench gives ews-javascript-api ${task.concurrency}`);
  let subscribed = 0;
  let connected = 0;
  let wake: (() => void) | undefined;
  // One listener and one observer for every member, as a service would write them.
  const onLifecycle = (signal: { type: string }): void => {
    if (signal.type === 'subscribed') subscribed++;
    else if (signal.type === 'connected') connected++;
    else return;
    wake?.();
  };
  let failure: unknown;
  const observer = {
    error: (error: unknown) => {
      failure ??= error;
      wake?.();
    },
  };
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      if (failure !== undefined) throw failure;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    wake = undefined;
  };
  return {
    async add(from, to) {
      const started = performance.now();
      for (let i = from; i < to; i++) group.notifications({ mailbox: mailboxOf(i), onLifecycle }).subscribe(observer);
      await until(() => subscribed >= to);
      const subscribeMs = performance.now() - started;
      await until(() => connected >= to);
      return { subscribeMs, connectMs: performance.now() - started };
    },
    connections: () => group.stats().streams,
  };
}

async function ejaHolder(task: IdleTask): Promise<Holder> {
  const ews = await import('ews-javascript-api');
  const { BENCH_PASSWORD, BENCH_USER } = await import('./recorder.js');
  const anchor = mailboxOf(0);
  const serviceFor = (): InstanceType<typeof ews.ExchangeService> => {
    const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
    service.Credentials = new ews.WebCredentials(BENCH_USER, BENCH_PASSWORD);
    service.Url = new ews.Uri(task.url);
    service.HttpHeaders.Add('X-AnchorMailbox', anchor);
    return service;
  };
  // The anchor's service carries every GetStreamingEvents; the other subscribes every mailbox.
  const anchorService = serviceFor();
  anchorService.ImpersonatedUserId = new ews.ImpersonatedUserId(ews.ConnectingIdType.SmtpAddress, anchor);
  const subscriber = serviceFor();
  const folders = [new ews.FolderId(ews.WellKnownFolderName.Inbox)];
  const opened: InstanceType<typeof ews.StreamingSubscriptionConnection>[] = [];
  let pending: InstanceType<typeof ews.StreamingSubscription>[] = [];
  return {
    async add(from, to) {
      const started = performance.now();
      const subscriptions: InstanceType<typeof ews.StreamingSubscription>[] = new Array(to - from);
      let next = from;
      const worker = async (): Promise<void> => {
        while (next < to) {
          const i = next++;
          subscriber.ImpersonatedUserId = new ews.ImpersonatedUserId(ews.ConnectingIdType.SmtpAddress, mailboxOf(i));
          // Builds and sends the request's XML before it returns: the id set above is the one sent.
          subscriptions[i - from] = await subscriber.SubscribeToStreamingNotifications(folders, ews.EventType.NewMail, ews.EventType.Created, ews.EventType.Modified);
        }
      };
      await Promise.all(Array.from({ length: task.concurrency }, worker));
      const subscribeMs = performance.now() - started;
      subscriber.ImpersonatedUserId = null as never;
      pending.push(...subscriptions);
      const fresh: InstanceType<typeof ews.StreamingSubscriptionConnection>[] = [];
      while (pending.length >= 200 || (pending.length > 0 && next >= to)) {
        const connection = new ews.StreamingSubscriptionConnection(anchorService, 30);
        for (const subscription of pending.slice(0, 200)) connection.AddSubscription(subscription);
        pending = pending.slice(200);
        connection.Open().catch(() => undefined);
        fresh.push(connection);
        opened.push(connection);
      }
      // It reports no event when a stream opens (its header callback never fires with its own XHR
      // layer); a connection counts as open once the first bytes (the server's keep-alive) arrived.
      while (!fresh.every((connection) => connection.IsOpen)) await settle(20);
      return { subscribeMs, connectMs: performance.now() - started };
    },
    connections: () => opened.length,
  };
}

const waitForContinue = (): Promise<void> =>
  new Promise((resolve) => {
    const onMessage = (message: { type?: string }): void => {
      if (message.type !== 'continue') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });

process.once('message', (task: IdleTask) => {
  // tsx turns source maps on; the first stack trace formatted later would then load dist/'s
  // source map (~1.5 MiB of strings) in the middle of the measurement, a one-off cost that
  // the marginal figure would charge to the subscriptions added meanwhile.
  process.setSourceMapsEnabled(false);
  const run = async (): Promise<void> => {
    // The client's code is loaded and what it needs before a first subscription is made before
    // the baseline, so the readings count subscriptions only.
    const holder = task.client === 'eja' ? await ejaHolder(task) : await groupHolder(task);
    const before = sample();
    let from = 0;
    for (const to of task.steps) {
      const cpu = process.cpuUsage();
      const { subscribeMs, connectMs } = await holder.add(from, to);
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      from = to;
      await settle(task.settleMs);
      const after = sample();
      let snapshot: string | undefined;
      if (task.snapshotDir !== undefined) snapshot = v8.writeHeapSnapshot(join(task.snapshotDir, `${task.client}-${to}.heapsnapshot`));
      const step: IdleStep = { type: 'step', client: task.client, subscriptions: to, connections: holder.connections(), subscribeMs, connectMs, cpuMs, before, after, ...(snapshot ? { snapshot } : {}) };
      const proceed = waitForContinue();
      process.send?.(step);
      await proceed;
    }
  };
  // Exit without tearing down: the parent closes the server, and 10,000 Unsubscribes measure nothing.
  run().then(
    () => process.send?.({ type: 'done' }, () => process.exit(0)),
    (error: unknown) => process.send?.({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(0)),
  );
});
