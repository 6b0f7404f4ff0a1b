/**
 * `npm run bench`: every side-by-side bench in turn, then the targets of issue 9 checked against
 * the results, as Markdown ready for BENCHMARKS.md. Takes about 20 minutes on a quiet 2-core machine
 * (the latency bench alone runs 2 × 3 clients × 55 s).
 *
 * Run: `npm run bench` (or `npx tsx bench/run-all.ts [runs=5]`). The exit code is 1 when a bench
 * fails (a client of ours lost an event, or could not run); missed targets are reported, not fatal.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { idleTable, runIdleMemory } from './idle-memory.js';
import { pullTable, runPull } from './pull.js';
import { latencyTable, runRateLatency } from './rate-latency.js';
import { fixed, int, median, mib, table } from './stats.js';
import { chunkLabel, ratioIfComplete, runThroughput, throughputTables, type ThroughputConfig } from './throughput.js';

const runs = Number(process.argv[2] ?? 5) || 5;
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const started = Date.now();
const loadAtStart = os.loadavg();

/** Runs another bench script (`npx tsx`) and returns its output. */
function script(name: string, args: readonly string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const path = fileURLToPath(new URL(name, import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString('utf8');
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${name} exited with ${code}`))));
  });
}

log(`throughput (${runs} runs × 9 stream shapes × 3 clients, each warm and cold)…`);
const throughput = await runThroughput({ runs, log });
log('latency at 100 and 1,000 events/s (2 runs of 5,000 samples each)…');
const latency = await runRateLatency({ log });
log(`pull (${runs} runs × 2 clients)…`);
const pull = await runPull({ runs, log });
log('10,000 idle subscriptions (readings at 2,000 and 10,000)…');
const idle = await runIdleMemory({ log });
log('bench/streaming-latency.ts…');
// A script that fails is reported in its section; the tables of the others are still printed.
const orFailure = (name: string) => (error: unknown): string => `${name} could not run: ${error instanceof Error ? error.message : String(error)}`;
const pingPong = await script('streaming-latency.ts').catch(orFailure('streaming-latency.ts'));
log('bench/parse.ts…');
const parse = await script('parse.ts').catch(orFailure('parse.ts'));

// --- targets -----------------------------------------------------------------------------------

function medianOf(config: ThroughputConfig, client: string, pick: (r: ThroughputConfig['runs'][number]) => number): number {
  return median(config.runs.filter((r) => r.client === client).map(pick).filter(Number.isFinite));
}

const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');
const targetRows: string[][] = [];
for (const config of throughput) {
  const shape = `${config.eventsPerNotification}-event notifications, ${chunkLabel(config.chunkBytes)} chunks`;
  const a = medianOf(config, 'ours', (r) => r.eventsPerSecond);
  const b = medianOf(config, 'eja', (r) => r.eventsPerSecond);
  const c = medianOf(config, 'saxes', (r) => r.eventsPerSecond);
  const ac = medianOf(config, 'ours', (r) => r.cold.eventsPerSecond);
  const bc = medianOf(config, 'eja', (r) => r.cold.eventsPerSecond);
  const eja = config.runs.filter((r) => r.client === 'eja');
  // A ratio against (b) only where it lost nothing: otherwise there is no rate of the stream to compare.
  const lostWarm = eja.map((r) => r.lost);
  const lostCold = eja.map((r) => r.cold.lost);
  const ratioTarget = (what: string, x: number, y: number, lost: readonly number[]): string[] => {
    const measured = ratioIfComplete(x, y, lost);
    return [`(a) ≥ 5× (b) ${what}, ${shape}`, measured, measured.startsWith('n/a') ? 'n/a' : verdict(x >= 5 * y)];
  };
  targetRows.push(ratioTarget('warm', a, b, lostWarm), ratioTarget('cold', ac, bc, lostCold));
  targetRows.push([`(a) ≥ 0.8× (c) warm, ${shape}`, `${fixed(a / c)}×`, verdict(a >= 0.8 * c)]);
  const ha = medianOf(config, 'ours', (r) => r.heapGrowthBytes);
  const hb = medianOf(config, 'eja', (r) => r.heapGrowthBytes);
  const ka = medianOf(config, 'ours', (r) => r.retainedGrowthBytes);
  const kb = medianOf(config, 'eja', (r) => r.retainedGrowthBytes);
  const delivered = medianOf(config, 'eja', (r) => r.delivered);
  targetRows.push([
    `heap growth (a) ≤ ¼ (b), ${shape}, V8 default nursery`,
    `${mib(ha)} vs ${mib(hb)} MiB = ${fixed(ha / hb)} (old + large objects: ${mib(ka)} vs ${mib(kb)} = ${fixed(ka / kb)})` +
      (delivered < 9_000 ? `; (b) handled only ${int(delivered)} events` : ''),
    verdict(ha <= hb / 4),
  ]);
}
// (a) losing an event fails the bench before this point, warm or cold, in every shape.
targetRows.push(['(a) loses no event, every shape, warm and cold', '0 lost in every run', verdict(true)]);
const fast = latency.filter((r) => r.client === 'ours' && r.rate === 1000 && r.problem === undefined);
const p99s = fast.map((r) => r.p99);
targetRows.push([
  'p99 ≤ 5 ms at 1,000 events/s, (a)',
  `${fixed(Math.min(...p99s))}–${fixed(Math.max(...p99s))} ms over ${fast.length} runs of ${fast[0]?.samples.toLocaleString('en-US') ?? 0} samples`,
  verdict(p99s.length > 0 && Math.max(...p99s) <= 5),
]);

const cpu = os.cpus()[0]?.model ?? 'unknown';
const minutes = (Date.now() - started) / 60_000;
console.log(
  [
    `Machine: ${os.availableParallelism()} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}.`,
    `Load average ${loadAtStart.map((l) => l.toFixed(1)).join(' / ')} at the start, ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end (1/5/15 min); the whole run took ${fixed(minutes, 1)} min.`,
    '',
    '### Targets',
    '',
    table(['target', 'measured', ''], targetRows),
    '',
    '### Throughput and heap (10,000-event GetStreamingEvents response)',
    '',
    throughputTables(throughput),
    '',
    '### Latency at a steady rate (server write → callback, other processes; range over the runs)',
    '',
    latencyTable(latency),
    '',
    '### Pull (GetEvents, 50 events a page)',
    '',
    pullTable(pull),
    '',
    '### 10,000 idle streaming subscriptions, one mailbox each',
    '',
    idleTable(idle),
    '',
    '### bench/streaming-latency.ts (one event at a time, and reconnect after Closed; EwsSimulator in-process)',
    '',
    '```',
    pingPong,
    '```',
    '',
    '### bench/parse.ts (EnvelopeParser vs raw saxes in memory, no socket)',
    '',
    '```',
    parse,
    '```',
  ].join('\n'),
);
