/**
 * Scale scenario for issue 17: N mailboxes shared by 3 local worker processes through Redis
 * (bench/lease-child.ts). Reports the time until every mailbox is owned (and, in `pull` mode,
 * subscribed), idle RSS per worker, the coordinator's Redis commands per second and redis-server's
 * CPU (from its INFO: while claiming, idle over `LEASE_IDLE_MS`, default 30 s, and during the
 * takeover), and the takeover time after one worker is SIGKILLed.
 *
 * Run: `npx tsx bench/lease-scale.ts [mailboxes=30000] [mode=leases|pull] [leaseTtlMs=15000]`.
 * Needs Debian's `redis-server` (started here on a free port, no persistence). In `pull` mode the
 * EwsSimulator runs in this process, each worker in its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { fileURLToPath } from 'node:url';
import { EwsSimulator } from '../lib/testing/index.js';
import { redisServerMissing, startRedisServer } from '../test/helpers/redis-server.js';
import type { LeaseChildTask } from './lease-child.js';

const MAILBOXES = Number(process.argv[2] ?? 30_000);
const MODE = (process.argv[3] ?? 'leases') as LeaseChildTask['mode'];
const TTL_MS = Number(process.argv[4] ?? 15_000);
const WORKERS = 3;
/** How long the idle readings (commands/s, Redis CPU) last. */
const IDLE_MS = Number(process.env.LEASE_IDLE_MS ?? 30_000);

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  owned: number;
  connected: number;
  joinedRss: number | undefined;
  baseRss: number | undefined;
  readonly exited: Promise<void>;
  dead: boolean;
  reply: ((message: Record<string, unknown>) => void) | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function until(predicate: () => boolean): Promise<number> {
  const started = performance.now();
  while (!predicate()) await sleep(20);
  return performance.now() - started;
}

function ask(worker: Worker, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    worker.reply = resolve;
    worker.child.send(what);
  });
}

/** What redis-server reports of its work so far: CPU seconds (user + system, main thread and children) and commands. */
interface RedisWork {
  readonly cpuS: number;
  readonly commands: number;
  readonly at: number;
}

async function redisWork(client: Redis): Promise<RedisWork> {
  const info = await client.info();
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return { cpuS: field('used_cpu_user') + field('used_cpu_sys'), commands: field('total_commands_processed'), at: performance.now() };
}

/** Redis CPU (% of one core) and commands/s between two readings (the reading's own INFO counted out). */
function redisRate(from: RedisWork, to: RedisWork): string {
  const s = (to.at - from.at) / 1000;
  return `Redis ${((100 * (to.cpuS - from.cpuS)) / s).toFixed(2)} % of a core, ${((to.commands - from.commands - 1) / s).toFixed(2)} commands/s`;
}

async function main(): Promise<void> {
  const missing = redisServerMissing();
  if (missing !== undefined) {
    console.log(missing);
    return;
  }
  const redis = await startRedisServer();
  const monitor = redis.client();
  // Every worker signs in as one service account: the simulator's EWSMaxSubscriptions (5,000 per
  // user by default, as Exchange's) would stall the run at 5,000 subscriptions (each further
  // Subscribe retried on ErrorExceededSubscriptionCount). A deployment this size needs several
  // accounts or a throttling policy that allows it; here the limit is raised to twice the mailbox
  // count: a SIGKILLed worker's subscriptions stay on the server until they time out, and its
  // mailboxes' new owners subscribe them again meanwhile (at 1× the takeover stalls the same way).
  const sim = MODE === 'pull' ? await EwsSimulator.start({ maxSubscriptionsPerUser: Math.max(5_000, 2 * MAILBOXES) }) : undefined;
  const script = fileURLToPath(new URL('./lease-child.ts', import.meta.url));
  const workers: Worker[] = [];
  const spawnedAt = performance.now();
  for (let i = 0; i < WORKERS; i++) {
    const task: LeaseChildTask = {
      name: `w${i + 1}`,
      redisPort: redis.port,
      ewsUrl: sim?.url ?? 'http://127.0.0.1:9/unused',
      mailboxes: MAILBOXES,
      mode: MODE,
      leaseTtlMs: TTL_MS,
      maxConcurrentSubscribes: 50,
    };
    const child = fork(script, [JSON.stringify(task)], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const worker: Worker = {
      name: task.name,
      child,
      owned: 0,
      connected: 0,
      joinedRss: undefined,
      baseRss: undefined,
      exited: new Promise((resolve) => child.on('exit', () => resolve())),
      dead: false,
      reply: undefined,
    };
    child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'joined') {
        worker.joinedRss = Number(message.rss);
        worker.baseRss = Number(message.baseRss);
      }
      else if (message.type === 'owned') {
        worker.owned = Number(message.owned);
        worker.connected = Number(message.connected);
      } else {
        const reply = worker.reply;
        worker.reply = undefined;
        reply?.(message);
      }
    });
    workers.push(worker);
  }
  const live = (): Worker[] => workers.filter((w) => !w.dead);
  const sum = (f: (w: Worker) => number): number => live().reduce((a, w) => a + f(w), 0);
  // Progress on stderr every 10 s, so a run that stalls shows where.
  const progress = setInterval(() => {
    console.error(`  [${((performance.now() - spawnedAt) / 1000).toFixed(0)} s] owned ${workers.map((w) => w.owned).join('/')}, connected ${workers.map((w) => w.connected).join('/')}`);
  }, 10_000);
  progress.unref();
  const joinMs = await until(() => workers.every((w) => w.joinedRss !== undefined));
  const claimFrom = await redisWork(monitor);
  const ownedMs = await until(() => sum((w) => w.owned) === MAILBOXES);
  const claimTo = await redisWork(monitor);
  const subscribedMs = MODE === 'pull' ? await until(() => sum((w) => w.connected) === MAILBOXES) : 0;
  console.log(
    `${MAILBOXES} mailboxes, ${WORKERS} workers, mode ${MODE}, TTL ${TTL_MS} ms: all joined ${(joinMs / 1000).toFixed(1)} s after spawn; ` +
      `every mailbox owned ${(ownedMs / 1000).toFixed(1)} s after that` +
      (MODE === 'pull' ? `, every pull subscription connected ${(subscribedMs / 1000).toFixed(1)} s later` : '') +
      ` (shares ${workers.map((w) => w.owned).join('/')}); while claiming: ${redisRate(claimFrom, claimTo)}`,
  );

  await sleep(5_000); // idle
  const statsBefore = await Promise.all(workers.map((w) => ask(w, 'stats')));
  const idleFrom = performance.now();
  const redisIdleFrom = await redisWork(monitor);
  await sleep(IDLE_MS);
  const redisIdleTo = await redisWork(monitor);
  const statsAfter = await Promise.all(workers.map((w) => ask(w, 'stats')));
  const idleS = (performance.now() - idleFrom) / 1000;
  for (let i = 0; i < WORKERS; i++) {
    const before = statsBefore[i]!.stats as { commands: number; ticks: number };
    const after = statsAfter[i]!.stats as { commands: number; ticks: number };
    const memory = await ask(workers[i]!, 'memory');
    const rss = Number(memory.rss);
    const base = workers[i]!.baseRss ?? 0;
    console.log(
      `  ${workers[i]!.name}: owns ${String(memory.owned)}; idle RSS ${mib(rss)} MiB (${mib(base)} MiB before the coordinator, ${mib(workers[i]!.joinedRss ?? 0)} MiB when joined; ` +
        `${(((rss - base) / Math.max(1, Number(memory.owned))) / 1024).toFixed(2)} KiB per owned mailbox over the first), heap ${mib(Number(memory.heapUsed))} MiB; ` +
        `coordinator ${((after.commands - before.commands) / idleS).toFixed(2)} Redis commands/s while idle (${after.ticks - before.ticks} renewals in ${idleS.toFixed(1)} s)`,
    );
  }
  console.log(`  idle, all workers: ${redisRate(redisIdleFrom, redisIdleTo)}`);

  // SIGKILL one worker: the others take its mailboxes over once its lease expires.
  const victim = workers[0]!;
  const victimOwned = victim.owned;
  const takeoverFrom = await redisWork(monitor);
  victim.child.kill('SIGKILL');
  await victim.exited;
  victim.dead = true;
  const takeoverMs = await until(() => sum((w) => w.owned) === MAILBOXES);
  const takeoverTo = await redisWork(monitor);
  const resubscribedMs = MODE === 'pull' ? await until(() => sum((w) => w.connected) === MAILBOXES) : 0;
  console.log(
    `  SIGKILL ${victim.name} (${victimOwned} mailboxes): all owned again ${(takeoverMs / 1000).toFixed(1)} s later (2×TTL = ${((2 * TTL_MS) / 1000).toFixed(0)} s)` +
      (MODE === 'pull' ? `, all subscribed again ${(resubscribedMs / 1000).toFixed(1)} s after that` : '') +
      `; shares ${live().map((w) => w.owned).join('/')}; meanwhile ${redisRate(takeoverFrom, takeoverTo)}`,
  );
  clearInterval(progress);
  console.log(`  total ${((performance.now() - spawnedAt) / 1000).toFixed(0)} s`);

  for (const w of live()) w.child.send('close');
  await Promise.all(live().map((w) => w.exited));
  await sim?.close();
  monitor.disconnect();
  await redis.stop();
}

await main();
