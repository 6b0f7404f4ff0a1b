/**
 * Memory per idle streaming subscription, the way a service that watches many mailboxes holds
 * them: one subscription per mailbox (impersonated), 200 per GetStreamingEvents connection, the
 * EwsSimulator in a process of its own (bench/sim-child.ts) and each client in its own
 * (bench/idle-child.ts, which says what exactly both clients do):
 *
 * - (a) a `StreamingGroup` with its default options;
 * - (b) ews-javascript-api with the group's Subscribe concurrency.
 *
 * Readings after full GCs at the baseline (client code and its fixed objects loaded), at `from`
 * (2,000) and at `to` (10,000) subscriptions. Figures: **heap per subscription, marginal** between
 * `from` and `to` (what one more mailbox costs, free of fixed costs); **RSS per subscription** at
 * `to` (over the baseline); the time to subscribe and to connect them, in two steps.
 *
 * Run: `npx tsx bench/idle-memory.ts [to=10000] [from=2000]` (part of `npm run bench`; `npm run
 * build` first, the clients and the simulator load dist/). `IDLE_RAW=1` prints every reading;
 * `IDLE_SNAPSHOTS=dir` writes a heap snapshot at each step (bench/heap-diff.ts compares two);
 * `IDLE_CPU_PROF=dir` writes each client's CPU profile there; `IDLE_CONCURRENCY=n` gives both
 * clients n Subscribes in flight instead of the group's default 8.
 */
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runChild } from './child-runner.js';
import type { IdleStep, IdleTask } from './idle-child.js';
import type { SimStats, SimTask } from './sim-child.js';
import { fixed, int, table } from './stats.js';

/** Options of {@link runIdleMemory}. */
export interface IdleMemoryOptions {
  /** Subscriptions at the first reading. Default `2000`. */
  readonly from?: number;
  /** Subscriptions at the last reading. Default `10000`. */
  readonly to?: number;
  /** Clients to run. Default both. */
  readonly clients?: readonly IdleTask['client'][];
  /** Write heap snapshots at each step into this directory. Default: none. */
  readonly snapshotDir?: string;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

/** One client's run: its readings at each step, and what the server held then. */
export interface IdleRun {
  readonly client: IdleTask['client'];
  readonly steps: readonly (IdleStep & { readonly server: SimStats })[];
}

/** The StreamingGroup's default `maxConcurrentSubscribes`, given to ews-javascript-api too (the child checks it). */
export const SUBSCRIBE_CONCURRENCY = 8;

interface SimChild {
  readonly url: string;
  stats(): Promise<SimStats>;
  close(): Promise<void>;
}

/** Starts the simulator in its own process. */
async function startSim(task: SimTask): Promise<SimChild> {
  // IDLE_SIM_CPU_PROF=dir: a CPU profile of the simulator's process (its share of subscribe time).
  const profile = process.env.IDLE_SIM_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.IDLE_SIM_CPU_PROF}`] : [];
  const child = fork(fileURLToPath(new URL('sim-child.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx', ...profile], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = <T>(type: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: { type: string }): void => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as T);
      };
      const onExit = (): void => reject(new Error('the simulator process exited'));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ready = next<{ url: string }>('ready');
  child.send(task);
  const { url } = await ready;
  return {
    url,
    stats: () => {
      const answer = next<SimStats>('stats');
      child.send({ type: 'stats' });
      return answer;
    },
    close: async () => {
      if (child.exitCode === null) child.send({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs each client against a fresh simulator; throws when one cannot hold its subscriptions. */
export async function runIdleMemory(options: IdleMemoryOptions = {}): Promise<IdleRun[]> {
  const from = options.from ?? 2_000;
  const to = options.to ?? 10_000;
  const log = options.log ?? (() => undefined);
  const runs: IdleRun[] = [];
  for (const client of options.clients ?? (['group', 'eja'] as const)) {
    // A fresh server per client, so neither inherits the other's subscriptions and streams.
    // Keep-alives every 2 s: ews-javascript-api counts a connection open once bytes arrived.
    const sim = await startSim({ keepAliveIntervalMs: 2_000 });
    try {
      const task: IdleTask = {
        client,
        url: sim.url,
        steps: from > 0 && from < to ? [from, to] : [to],
        concurrency: Number(process.env.IDLE_CONCURRENCY ?? SUBSCRIBE_CONCURRENCY) || SUBSCRIBE_CONCURRENCY,
        settleMs: 3_000,
        ...(options.snapshotDir === undefined ? {} : { snapshotDir: options.snapshotDir }),
      };
      const steps: (IdleStep & { server: SimStats })[] = [];
      let checking = Promise.resolve();
      let mismatch: string | undefined;
      const outcome = await runChild<IdleStep>({
        script: 'idle-child.ts',
        task,
        timeoutMs: 600_000,
        ...(process.env.IDLE_CPU_PROF ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env.IDLE_CPU_PROF}`] } : {}),
        onReport: (step, reply) => {
          checking = checking.then(async () => {
            const server = await sim.stats();
            steps.push({ ...step, server });
            if (server.subscriptions !== step.subscriptions || server.subscribedMailboxes !== step.subscriptions || server.failedSubscribes > 0) {
              mismatch ??= `${client} at ${step.subscriptions}: the server holds ${server.subscriptions} subscriptions for ${server.subscribedMailboxes} mailboxes (${server.failedSubscribes} Subscribes failed)`;
            }
            if (server.openStreams !== step.connections) mismatch ??= `${client} at ${step.subscriptions}: the server holds ${server.openStreams} streams, the client reports ${step.connections}`;
            if (server.streamAnchors !== 1) mismatch ??= `${client}: GetStreamingEvents carried ${server.streamAnchors} X-AnchorMailbox values, not 1`;
            log(
              `  ${client}: ${int(step.subscriptions)} subscriptions on ${server.openStreams} GetStreamingEvents connections; ` +
                `subscribed in ${int(step.subscribeMs)} ms, connected in ${int(step.connectMs)} ms; ` +
                `CPU: client ${int(step.cpuMs)} ms, simulator ${int(server.cpuMs)} ms so far`,
            );
            reply({ type: 'continue' });
          });
        },
      });
      await checking;
      if (outcome.failure !== undefined || steps.length !== task.steps.length) throw new Error(`${client} could not hold ${to} subscriptions: ${outcome.failure ?? 'no report'}`);
      if (mismatch) throw new Error(mismatch);
      runs.push({ client, steps });
    } finally {
      await sim.close();
    }
  }
  return runs;
}

const kib = (bytes: number): string => fixed(bytes / 1024, 2);

/** Marginal heap per subscription between the first and last readings, and the other figures. */
export function idleFigures(run: IdleRun): { heapMarginal: number; heapAverage: number; rssPerSubscription: number; rssMarginal: number; subscribeMs: number; connectMs: number } {
  const first = run.steps[0]!;
  const last = run.steps[run.steps.length - 1]!;
  const added = last.subscriptions - (run.steps.length > 1 ? first.subscriptions : 0);
  const base = run.steps.length > 1 ? first.after : first.before;
  return {
    heapMarginal: (last.after.heapUsed - base.heapUsed) / added,
    heapAverage: (last.after.heapUsed - last.before.heapUsed) / last.subscriptions,
    rssPerSubscription: (last.after.rss - last.before.rss) / last.subscriptions,
    rssMarginal: (last.after.rss - base.rss) / added,
    subscribeMs: run.steps.reduce((sum, step) => sum + step.subscribeMs, 0),
    connectMs: run.steps.reduce((sum, step) => sum + step.connectMs, 0),
  };
}

/** The Markdown table of {@link runIdleMemory}'s runs. */
export function idleTable(runs: readonly IdleRun[]): string {
  const from = runs[0]?.steps[0]?.subscriptions ?? 0;
  return table(
    [
      'client',
      'subscriptions',
      'connections',
      `heap / subscription KiB, marginal ${int(from)}→last`,
      'heap / subscription KiB, average',
      'RSS / subscription KiB (over baseline)',
      'RSS total MiB (over baseline)',
      'peak RSS MiB',
      'time to subscribe all ms',
      'time to connect all ms',
    ],
    runs.map((run) => {
      const last = run.steps[run.steps.length - 1]!;
      const f = idleFigures(run);
      return [
        run.client === 'group' ? '(a) StreamingGroup' : '(b) ews-javascript-api',
        int(last.subscriptions),
        int(last.server.openStreams),
        kib(f.heapMarginal),
        kib(f.heapAverage),
        kib(f.rssPerSubscription),
        fixed((last.after.rss - last.before.rss) / 1024 / 1024, 1),
        fixed(last.after.peakRss / 1024 / 1024, 1),
        int(f.subscribeMs),
        int(f.connectMs),
      ];
    }),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const to = Number(process.argv[2] ?? 10_000) || 10_000;
  const from = Number(process.argv[3] ?? 2_000);
  const clients = process.env.IDLE_CLIENTS ? (process.env.IDLE_CLIENTS.split(',') as IdleTask['client'][]) : undefined;
  const runs = await runIdleMemory({ from, to, log: (line) => console.log(line), ...(clients ? { clients } : {}), ...(process.env.IDLE_SNAPSHOTS ? { snapshotDir: process.env.IDLE_SNAPSHOTS } : {}) });
  if (process.env.IDLE_RAW) console.log(JSON.stringify(runs, null, 1));
  console.log(`\n${idleTable(runs)}`);
}
