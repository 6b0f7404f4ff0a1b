/**
 * Parse throughput of EnvelopeParser against raw saxes on the same bytes, in memory (no socket).
 *
 * Run: `npx tsx bench/parse.ts [rounds=7] [--sizes=50] [--chunks=65536,1460] [--runs=5] [--warmups=5]`
 * (tsx is a devDependency; it runs the TypeScript sources directly, so no build is needed).
 *
 * The stream is what a GetStreamingEvents connection delivers under load: 10,000 events in
 * Exchange-2016-style envelopes (unprefixed Envelope, soap11 Header/Body, m:Notification), one
 * notification of `--sizes` events each (default 50), ids of realistic length, then
 * `ConnectionStatus Closed` — the bytes bench/throughput.ts serves. It is fed in 64 KiB chunks (a
 * busy socket) and 1,460-byte chunks (one TCP segment each) to
 *   (a) EnvelopeParser — decoding, namespaces, typed PushNotifications, size/security checks;
 *   (b) raw saxes in namespace mode (xmlns, fragment) with the same streaming TextDecoder, whose
 *       handlers only count events;
 *   (c) raw saxes without namespace processing, for reference.
 *
 * Every configuration is measured in its own fresh child process: run by turns in one process,
 * each parser's code would meet the others' object shapes in shared saxes code (polluted inline
 * caches, deoptimisations), which once made a 9–11 % faster EnvelopeParser look 8 % slower. A
 * round forks one child per configuration, in an order rotated per round; each child parses the
 * stream `--warmups` times, then times `--runs` parses and reports their median. The figure per
 * configuration is the median over the rounds.
 */
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SaxesParser } from 'saxes';
import { EnvelopeParser } from '../lib/ews/parser.js';
import { chunksOf, streamingResponseText } from './stream-fixture.js';

const EVENTS = 10_000;
const CONFIGS = ['ours', 'saxes-xmlns', 'saxes-plain'] as const;
type Config = (typeof CONFIGS)[number];
const LABELS: Record<Config, string> = {
  ours: 'EnvelopeParser',
  'saxes-xmlns': 'raw saxes, xmlns',
  'saxes-plain': 'raw saxes, no xmlns',
};

/** What the parent asks one child to measure. */
interface ParseTask {
  readonly config: Config;
  readonly eventsPerNotification: number;
  readonly chunkBytes: number;
  readonly warmups: number;
  readonly runs: number;
}

function streamParts(eventsPerNotification: number, chunkBytes: number): Buffer[] {
  const text = streamingResponseText({ events: EVENTS, eventsPerNotification, closed: true });
  return chunksOf(Buffer.from(text, 'utf8'), chunkBytes);
}

function envelopeParser(parts: readonly Buffer[]): number {
  const parser = new EnvelopeParser();
  let events = 0;
  const count = (envs: ReturnType<EnvelopeParser['write']>): void => {
    for (const e of envs) {
      if (e.body.type !== 'response') continue;
      for (const m of e.body.messages) {
        if (m.kind === 'GetStreamingEvents') for (const n of m.notifications) events += n.events.length;
      }
    }
  };
  for (const part of parts) count(parser.write(part));
  count(parser.end());
  return events;
}

function rawSaxes(parts: readonly Buffer[], xmlns: boolean): number {
  const decoder = new TextDecoder('utf-8');
  const sax = xmlns ? new SaxesParser({ xmlns: true, fragment: true }) : new SaxesParser({ fragment: true });
  let open = 0;
  let close = 0;
  let textEvents = 0;
  sax.on('opentag', () => {
    open++;
  });
  sax.on('closetag', () => {
    close++;
  });
  sax.on('text', () => {
    textEvents++;
  });
  for (const part of parts) sax.write(decoder.decode(part, { stream: true }));
  sax.write(decoder.decode());
  sax.close();
  if (open !== close || textEvents === 0) throw new Error('raw saxes saw an unbalanced stream');
  // Opening tags per event are fixed by construction; report the event count the stream holds.
  return open > 0 ? EVENTS : 0;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** In the child: warm up, then time `runs` parses; returns their median in ms. */
function measureInChild(task: ParseTask): number {
  const parts = streamParts(task.eventsPerNotification, task.chunkBytes);
  const parse =
    task.config === 'ours' ? () => envelopeParser(parts) : () => rawSaxes(parts, task.config === 'saxes-xmlns');
  const time = (): number => {
    const start = process.hrtime.bigint();
    const seen = parse();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (seen !== EVENTS) throw new Error(`${task.config} counted ${seen} events, expected ${EVENTS}`);
    return ms;
  };
  for (let i = 0; i < task.warmups; i++) time();
  const times: number[] = [];
  for (let i = 0; i < task.runs; i++) times.push(time());
  return median(times);
}

/** In the parent: one fresh child for one configuration; resolves with its median ms. */
function runChild(task: ParseTask): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve, reject) => {
    let result: number | undefined;
    child.on('message', (message: { ms?: number; error?: string }) => {
      if (message.error !== undefined) reject(new Error(message.error));
      else result = message.ms;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`the ${task.config} child exited with ${code ?? 'a signal'} and no result`));
    });
    child.send(task);
  });
}

function listArg(name: string): number[] | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg?.slice(name.length + 3).split(',').map(Number);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const rounds = Math.max(7, Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 7));
  const runs = Math.max(1, listArg('runs')?.[0] ?? 5);
  const warmups = Math.max(0, listArg('warmups')?.[0] ?? 5);
  const sizes = listArg('sizes') ?? [50];
  const chunkSizes = listArg('chunks') ?? [64 * 1024, 1460];
  console.log(
    `Stream: ${fmt(EVENTS)} events; one child per configuration per round, ${warmups} warm-up and ${runs} timed ` +
      `parses each; median over ${rounds} rounds; Node ${process.version}`,
  );
  for (const eventsPerNotification of sizes) {
    for (const chunkBytes of chunkSizes) {
      const perConfig = new Map<Config, number[]>(CONFIGS.map((c) => [c, []]));
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < CONFIGS.length; k++) {
          const config = CONFIGS[(k + round) % CONFIGS.length] as Config;
          perConfig.get(config)?.push(await runChild({ config, eventsPerNotification, chunkBytes, warmups, runs }));
        }
      }
      const ms = (config: Config): number => median(perConfig.get(config) ?? []);
      const rate = (config: Config): string => {
        const all = perConfig.get(config) ?? [];
        const spread = `${Math.min(...all).toFixed(1)}–${Math.max(...all).toFixed(1)}`;
        return `${fmt(EVENTS / (ms(config) / 1000)).padStart(10)} events/s (${ms(config).toFixed(1).padStart(6)} ms; rounds ${spread} ms)`;
      };
      const chunks = streamParts(eventsPerNotification, chunkBytes).length;
      console.log(`\n${eventsPerNotification}-event notifications, ${chunkBytes === 1460 ? '1,460 B' : `${chunkBytes / 1024} KiB`} chunks (${chunks} chunks)`);
      for (const config of CONFIGS) console.log(`  ${LABELS[config].padEnd(22)} ${rate(config)}`);
      console.log(`  EnvelopeParser / saxes xmlns    = ${(ms('saxes-xmlns') / ms('ours')).toFixed(2)}×`);
      console.log(`  EnvelopeParser / saxes no xmlns = ${(ms('saxes-plain') / ms('ours')).toFixed(2)}×`);
    }
  }
}

if (process.argv.includes('--child')) {
  process.once('message', (task: ParseTask) => {
    let message: { ms: number } | { error: string };
    try {
      message = { ms: measureInChild(task) };
    } catch (error) {
      message = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    process.send?.(message, () => process.exit(0));
  });
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main();
}
