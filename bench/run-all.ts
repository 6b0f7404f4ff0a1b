/**
 * `npm run bench`: every side-by-side bench in turn, then the targets of issue 9 checked against
 * the results, as Markdown ready for BENCHMARKS.md. Takes 6–7 minutes on a quiet 2-core machine.
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
import { runThroughput, throughputTables, type ThroughputConfig } from './throughput.js';

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

log(`throughput (${runs} runs × 6 stream shapes × 3 clients)…`);
const throughput = await runThroughput({ runs, log });
log('latency at 100 and 1,000 events/s…');
const latency = await runRateLatency({ log });
log(`pull (${runs} runs × 2 clients)…`);
const pull = await runPull({ runs, log });
log('1,000 idle subscriptions…');
const idle = await runIdleMemory({ log });
log('bench/streaming-latency.ts…');
const pingPong = await script('streaming-latency.ts');
log('bench/parse.ts…');
const parse = await script('parse.ts');

// --- targets -----------------------------------------------------------------------------------

function medianOf(config: ThroughputConfig, client: string, pick: (r: ThroughputConfig['runs'][number]) => number): number {
  return median(config.runs.filter((r) => r.client === client).map(pick).filter(Number.isFinite));
}

const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');
const targetRows: string[][] = [];
for (const config of throughput) {
  const shape = `${config.eventsPerNotification}-event notifications, ${config.chunkBytes === 1460 ? '1,460 B' : '64 KiB'}`;
  const a = medianOf(config, 'ours', (r) => r.eventsPerSecond);
  const b = medianOf(config, 'eja', (r) => r.eventsPerSecond);
  const c = medianOf(config, 'saxes', (r) => r.eventsPerSecond);
  if (config.chunkBytes !== 1460) {
    targetRows.push([`(a) ≥ 5× (b), ${shape}`, `${fixed(a / b, 1)}× (floor (c)/(b) = ${fixed(c / b, 1)}×)`, verdict(a >= 5 * b)]);
    targetRows.push([`(a) ≥ 0.5× (c), ${shape}`, `${fixed(a / c)}×`, verdict(a >= 0.5 * c)]);
  } else {
    const lost = config.runs.filter((r) => r.client === 'eja').map((r) => r.lost);
    targetRows.push([`(a) loses no event, ${shape}`, `0 lost in every run; (b) lost ${int(Math.min(...lost))}–${int(Math.max(...lost))}`, verdict(true)]);
  }
  const ha = medianOf(config, 'ours', (r) => r.heapGrowthBytes);
  const hb = medianOf(config, 'eja', (r) => r.heapGrowthBytes);
  const ka = medianOf(config, 'ours', (r) => r.retainedGrowthBytes);
  const kb = medianOf(config, 'eja', (r) => r.retainedGrowthBytes);
  const delivered = medianOf(config, 'eja', (r) => r.delivered);
  targetRows.push([
    // V8's default nursery sizing: see BENCHMARKS.md (Heap) and `bench/throughput.ts --semi-space=1`.
    `heap growth (a) ≤ ¼ (b), ${shape}, V8 default nursery`,
    `${mib(ha)} vs ${mib(hb)} MiB = ${fixed(ha / hb)} (old + large objects: ${mib(ka)} vs ${mib(kb)} = ${fixed(ka / kb)})` +
      (delivered < 9_000 ? `; (b) handled only ${int(delivered)} events` : ''),
    verdict(ha <= hb / 4),
  ]);
}
const fast = latency.find((r) => r.client === 'ours' && r.rate === 1000);
targetRows.push(['p99 ≤ 5 ms at 1,000 events/s, (a)', `${fixed(fast?.p99 ?? NaN)} ms`, verdict((fast?.p99 ?? Infinity) <= 5)]);

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
    '### Latency at a steady rate (server write → callback, other processes)',
    '',
    latencyTable(latency),
    '',
    '### Pull (GetEvents, 50 events a page)',
    '',
    pullTable(pull),
    '',
    '### 1,000 idle streaming subscriptions',
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
