/**
 * Delivery latency at a steady event rate, across processes: the raw loopback server writes one
 * 1-event envelope (its own HTTP chunk) at a time at 100 and 1,000 events/s; each client runs in its
 * own child process and records when every event reaches its callback. Latency = callback time −
 * the server's time just before `write()`, both from `process.hrtime` (CLOCK_MONOTONIC, shared by
 * every process on the machine). The first second of each rate is warm-up and not counted. Each
 * rate has 5,000 counted samples per run, and the whole is run twice (separate child processes,
 * runs interleaved per client), so a percentile is reported as the range of the two runs.
 *
 * Clients: (a) `streamingNotifications`, (b) ews-javascript-api's StreamingSubscriptionConnection,
 * (c) raw saxes on the same socket (the floor: socket, HTTP and XML, nothing else).
 *
 * bench/streaming-latency.ts measures the other side: one event at a time (no pacing) and the
 * reconnect after `Closed`, against EwsSimulator in one process.
 *
 * Run: `npx tsx bench/rate-latency.ts [scale=1] [runs=2]` (part of `npm run bench`): 5,000 events
 * at 100/s (50 s) and 5,000 at 1,000/s (5 s) per client and run, times `scale`.
 */
import type { ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { runChild } from './child-runner.js';
import { CLIENTS, type ClientKind } from './clients.js';
import { RawEwsServer, holdOpen } from './raw-server.js';
import { fixed, percentile, table } from './stats.js';
import type { ChildTask, PassReport } from './stream-child.js';
import { streamingEnvelope } from './stream-fixture.js';

/** Rates and how many events each measures (50 s at 100/s, 5 s at 1,000/s by default). */
const RATES = [
  { rate: 100, events: 5_000 },
  { rate: 1000, events: 5_000 },
] as const;
const WARMUP_SECONDS = 1;

/** Latency summary of one client at one rate, in ms. */
export interface LatencyResult {
  readonly client: ClientKind;
  /** 1, 2… */
  readonly run: number;
  readonly rate: number;
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Set when the client lost or reordered events (then no latency is computed). */
  readonly problem: string | undefined;
}

/** Options of {@link runRateLatency}. */
export interface RateLatencyOptions {
  /** Scales the measured events per rate (1 = 5,000 at each rate). Default `1`. */
  readonly scale?: number;
  /** Separate runs (each client in a fresh child process per run). Default `2`. */
  readonly runs?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

/** Runs every client at every rate; throws when (a) loses or reorders an event. */
export async function runRateLatency(options: RateLatencyOptions = {}): Promise<LatencyResult[]> {
  const scale = options.scale ?? 1;
  const log = options.log ?? (() => undefined);
  const server = await RawEwsServer.start();
  const results: LatencyResult[] = [];
  try {
    const plans = RATES.map(({ rate, events }) => ({ rate, total: Math.max(100, Math.round(events * scale)) + rate * WARMUP_SECONDS }));
    const envelopes = Array.from({ length: Math.max(...plans.map((p) => p.total)) }, (_, n) => Buffer.from(`${streamingEnvelope(n, 1)}\r\n`, 'utf8'));
    const runs = Math.max(1, options.runs ?? 2);
    for (let run = 1; run <= runs; run++) {
      for (const client of CLIENTS) {
        const queue = [...plans];
        const written: Float64Array[] = [];
        server.onStream = (res, request) => {
          const plan = request.fresh ? queue.shift() : undefined;
          if (!plan) {
            holdOpen(res, request);
            return;
          }
          res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
          res.flushHeaders();
          const times = new Float64Array(plan.total);
          written.push(times);
          pace(res, plan.rate, plan.total, envelopes, times);
        };
        const task: ChildTask = {
          client,
          url: server.url,
          passes: plans.map((p) => ({ kind: 'latency' as const, expected: p.total })),
          timeoutMs: Math.max(...plans.map((p) => (p.total / p.rate) * 1000)) + 30_000,
        };
        const outcome = await runChild<PassReport>({ script: 'stream-child.ts', task, timeoutMs: 2 * plans.length * task.timeoutMs });
        plans.forEach((plan, i) => {
          const report = outcome.reports[i];
          const sent = written[i];
          const result = { ...summarise(client, plan.rate, plan.rate * WARMUP_SECONDS, report, sent, outcome.failure), run };
          if (client === 'ours' && result.problem !== undefined) throw new Error(`(a) failed at ${plan.rate} events/s: ${result.problem}`);
          results.push(result);
          log(`  run ${run} ${client.padEnd(5)} ${String(plan.rate).padStart(5)} events/s: ${result.problem ?? `p50 ${fixed(result.p50)} ms, p99 ${fixed(result.p99)} ms, max ${fixed(result.max)} ms`}`);
        });
      }
    }
  } finally {
    await server.close();
  }
  return results;
}

/**
 * Writes envelope `i` at `start + i / rate`, each as its own HTTP chunk, recording the time just
 * before each write. Events that fell due while the timer waited are written back to back.
 */
function pace(
  res: ServerResponse,
  rate: number,
  total: number,
  envelopes: readonly Buffer[],
  times: Float64Array,
): void {
  const start = process.hrtime.bigint();
  const intervalNs = 1e9 / rate;
  let next = 0;
  let stopped = false;
  res.once('close', () => {
    stopped = true;
  });
  const tick = (): void => {
    if (stopped) return;
    const now = Number(process.hrtime.bigint() - start);
    while (next < total && next * intervalNs <= now) {
      times[next] = Number(process.hrtime.bigint());
      res.write(envelopes[next] as Buffer);
      next++;
    }
    if (next >= total) return;
    const waitMs = Math.max(0, (next * intervalNs - Number(process.hrtime.bigint() - start)) / 1e6);
    setTimeout(tick, Math.floor(waitMs));
  };
  tick();
}

function summarise(
  client: ClientKind,
  rate: number,
  skip: number,
  report: PassReport | undefined,
  sent: Float64Array | undefined,
  failure: string | undefined,
): Omit<LatencyResult, 'run'> {
  const none = { client, rate, samples: 0, p50: NaN, p99: NaN, max: NaN };
  if (!report || !sent || !report.times) return { ...none, problem: (failure ?? 'no report').split('\n')[0] };
  if (!report.check.ok) {
    const c = report.check;
    return { ...none, problem: `${c.lost} lost, ${c.outOfOrder} out of order, ${c.duplicates} duplicated, ${c.foreign} unrecognised (${report.endedBy})` };
  }
  const latencies: number[] = [];
  for (let i = skip; i < report.times.length; i++) latencies.push(((report.times[i] as number) - (sent[i] as number)) / 1e6);
  return {
    client,
    rate,
    samples: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    problem: undefined,
  };
}

/** `0.11` or `0.11–0.13`: the range over the runs. */
function spread(values: readonly number[]): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return '–';
  const [min, max] = [Math.min(...finite), Math.max(...finite)];
  return fixed(min) === fixed(max) ? fixed(min) : `${fixed(min)}–${fixed(max)}`;
}

/** The Markdown table of {@link runRateLatency}'s results: per client and rate, the range over the runs. */
export function latencyTable(results: readonly LatencyResult[]): string {
  const names: Partial<Record<ClientKind, string>> = { ours: '(a) ours', eja: '(b) ews-javascript-api', saxes: '(c) raw saxes' };
  const rows: string[][] = [];
  for (const client of CLIENTS) {
    for (const rate of [...new Set(results.map((r) => r.rate))]) {
      const runs = results.filter((r) => r.client === client && r.rate === rate);
      if (runs.length === 0) continue;
      const problems = runs.filter((r) => r.problem !== undefined);
      const ok = runs.filter((r) => r.problem === undefined);
      rows.push([
        names[client] ?? client,
        String(rate),
        `${runs.length} × ${ok.length > 0 ? Math.min(...ok.map((r) => r.samples)).toLocaleString('en-US') : 0}`,
        spread(ok.map((r) => r.p50)),
        spread(ok.map((r) => r.p99)),
        spread(ok.map((r) => r.max)),
        problems.length === 0 ? '' : problems.map((r) => `run ${r.run}: ${r.problem ?? ''}`).join('; '),
      ]);
    }
  }
  return table(['client', 'events/s', 'runs × samples', 'p50 ms', 'p99 ms', 'max ms', 'problems'], rows);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const scale = Number(process.argv[2] ?? 1) || 1;
  const runs = Number(process.argv[3] ?? 2) || 2;
  const results = await runRateLatency({ scale, runs, log: (line) => console.log(line) });
  console.log(`\n${latencyTable(results)}`);
}
