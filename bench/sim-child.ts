/**
 * The EwsSimulator in a process of its own, for benches that measure a client's memory or time:
 * the server's parsing, its subscriptions and its timers then cost the client nothing (forked by
 * bench/idle-memory.ts with `--import tsx`; loads dist/testing, so `npm run build` first).
 *
 * IPC: the parent sends {@link SimTask} first; the child answers `{ type: 'ready', url }`. Then
 * `{ type: 'stats' }` ⟶ {@link SimStats}; `{ type: 'close' }` closes the server and exits.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Testing from '../lib/testing/index.js';

/** What the parent sends first. */
export interface SimTask {
  /** `keepAliveIntervalMs` of the simulator. */
  readonly keepAliveIntervalMs: number;
}

/** What the simulator holds, as `{ type: 'stats' }` answers it. */
export interface SimStats {
  readonly type: 'stats';
  readonly openStreams: number;
  readonly subscriptions: number;
  readonly subscribeRequests: number;
  /** Distinct mailboxes the Subscribe requests were for (impersonated, or the caller's own). */
  readonly subscribedMailboxes: number;
  /** Distinct X-AnchorMailbox values of GetStreamingEvents requests. */
  readonly streamAnchors: number;
  /** Subscribe requests that failed (status ≠ 200 or a fault). */
  readonly failedSubscribes: number;
  /** CPU time the simulator process used so far (user + system), ms. */
  readonly cpuMs: number;
}

const DIST = fileURLToPath(new URL('../dist/testing/index.js', import.meta.url));
if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first`);
const { EwsSimulator } = (await import(pathToFileURL(DIST).href)) as typeof Testing;

process.once('message', (task: SimTask) => {
  void (async () => {
    const sim = await EwsSimulator.start({
      keepAliveIntervalMs: task.keepAliveIntervalMs,
      // One service account subscribes every mailbox (impersonation) and streams them all behind one anchor.
      maxSubscriptionsPerUser: 1_000_000,
      maxStreamingConnectionsPerMailbox: 10_000,
    });
    process.on('message', (message: { type: string }) => {
      if (message.type === 'close') {
        void sim.close().finally(() => process.exit(0));
        return;
      }
      if (message.type !== 'stats') return;
      const mailboxes = new Set<string>();
      const anchors = new Set<string>();
      let subscribeRequests = 0;
      let failedSubscribes = 0;
      for (const request of sim.requests) {
        if (request.operation === 'Subscribe') {
          subscribeRequests++;
          if (request.mailbox !== undefined) mailboxes.add(request.mailbox);
          if (request.status !== 200 || request.fault !== undefined) failedSubscribes++;
        } else if (request.operation === 'GetStreamingEvents') {
          const anchor = request.headers['x-anchormailbox'];
          if (typeof anchor === 'string') anchors.add(anchor.toLowerCase());
        }
      }
      const stats: SimStats = {
        type: 'stats',
        openStreams: sim.openStreamingConnections,
        subscriptions: sim.subscriptions.length,
        subscribeRequests,
        subscribedMailboxes: mailboxes.size,
        streamAnchors: anchors.size,
        failedSubscribes,
        cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      };
      process.send?.(stats);
    });
    process.send?.({ type: 'ready', url: sim.url });
  })();
});
