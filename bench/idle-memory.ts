/**
 * Memory per idle streaming subscription: 1,000 subscriptions held open with nothing happening,
 * each client in its own child process (bench/idle-child.ts); RSS and used heap after full GCs,
 * before and after, divided by the number of subscriptions.
 *
 * (a) a `StreamingGroup` carries them on 5 GetStreamingEvents connections of 200 subscriptions each
 * (the EWS maximum per connection), as (b) ews-javascript-api does with 5
 * StreamingSubscriptionConnections; (a1) `streamingNotifications`, one connection per subscriber,
 * is measured too (1,000 subscriptions on 1,000 connections).
 *
 * Run: `npx tsx bench/idle-memory.ts [subscriptions=1000]` (part of `npm run bench`; `npm run build`
 * first, the clients load dist/). `IDLE_RAW=1` also prints every reading, committed heap included.
 */
import { pathToFileURL } from 'node:url';
import { runChild } from './child-runner.js';
import type { IdleReport, IdleTask } from './idle-child.js';
import { RawEwsServer } from './raw-server.js';
import { fixed, int, table } from './stats.js';

/** Options of {@link runIdleMemory}. */
export interface IdleMemoryOptions {
  /** Subscriptions per client. Default `1000`. */
  readonly subscriptions?: number;
  /** Connections (b) spreads them over. Default `5`. */
  readonly connections?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

/** Runs both clients; throws when one cannot hold its subscriptions. */
export async function runIdleMemory(options: IdleMemoryOptions = {}): Promise<IdleReport[]> {
  const subscriptions = options.subscriptions ?? 1000;
  const connections = options.connections ?? 5;
  const log = options.log ?? (() => undefined);
  const reports: IdleReport[] = [];
  for (const client of ['group', 'eja', 'ours'] as const) {
    // A fresh server per client, so neither inherits the other's open streams.
    const server = await RawEwsServer.start({ uniqueSubscriptionIds: true });
    try {
      const task: IdleTask = { client, url: server.url, subscriptions, connections, settleMs: 2_000 };
      let streams = 0;
      const outcome = await runChild<IdleReport>({
        script: 'idle-child.ts',
        task,
        timeoutMs: 180_000,
        onReport: () => {
          streams = server.openStreams;
        },
      });
      const report = outcome.reports[0];
      if (!report) throw new Error(`${client} could not hold ${subscriptions} subscriptions: ${outcome.failure ?? 'no report'}`);
      if (streams !== report.connections) throw new Error(`${client}: the server holds ${streams} streams, the client reports ${report.connections}`);
      reports.push(report);
      log(`  ${client}: ${report.subscriptions} subscriptions on ${streams} open GetStreamingEvents connections, opened in ${int(report.openMs)} ms`);
    } finally {
      await server.close();
    }
  }
  return reports;
}

/** The Markdown table of {@link runIdleMemory}'s reports. */
export function idleTable(reports: readonly IdleReport[]): string {
  const kib = (bytes: number): string => fixed(bytes / 1024, 1);
  return table(
    ['client', 'subscriptions', 'connections', 'RSS / subscription KiB', 'heap / subscription KiB', 'RSS total MiB', 'heap total MiB', 'open TCP handles', 'time to open all ms'],
    reports.map((r) => {
      const rss = r.after.rss - r.before.rss;
      const heap = r.after.heapUsed - r.before.heapUsed;
      return [
        r.client === 'group' ? '(a) StreamingGroup' : r.client === 'ours' ? '(a1) streamingNotifications' : '(b) ews-javascript-api',
        int(r.subscriptions),
        int(r.connections),
        kib(rss / r.subscriptions),
        kib(heap / r.subscriptions),
        fixed(rss / 1024 / 1024, 1),
        fixed(heap / 1024 / 1024, 1),
        int(r.after.tcpHandles - r.before.tcpHandles),
        int(r.openMs),
      ];
    }),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const subscriptions = Number(process.argv[2] ?? 1000) || 1000;
  const reports = await runIdleMemory({ subscriptions, log: (line) => console.log(line) });
  if (process.env.IDLE_RAW) console.log(JSON.stringify(reports, null, 1));
  console.log(`\n${idleTable(reports)}`);
}
