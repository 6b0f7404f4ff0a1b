/**
 * Parse throughput of EnvelopeParser against raw saxes on the same bytes.
 *
 * Run: `npx tsx bench/parse.ts` (tsx is a devDependency; it runs the TypeScript sources directly,
 * so no build is needed). Optional: `npx tsx bench/parse.ts 9` for 9 measured runs (default 7).
 *
 * The stream is what a GetStreamingEvents connection delivers under load: 10,000 events as 200
 * Exchange-2016-style envelopes (unprefixed Envelope, soap11 Header/Body, m:Notification), one
 * notification of 50 events each, ids of realistic length. It is fed in 64 KiB chunks (a busy
 * socket) and 1,460-byte chunks (one TCP segment each) to
 *   (a) EnvelopeParser — decoding, namespaces, typed PushNotifications, size/security checks;
 *   (b) raw saxes with the same options (xmlns, fragment) and the same streaming TextDecoder,
 *       whose handlers only count events;
 *   (c) raw saxes without namespace processing, for reference.
 * The configurations are warmed up, then timed round-robin over N runs; medians are reported.
 */
import { SaxesParser } from 'saxes';
import { EnvelopeParser } from '../lib/ews/parser.js';
import { chunksOf, streamingEnvelope } from './stream-fixture.js';

const EVENTS = 10_000;
const PER_NOTIFICATION = 50;
const RUNS = Math.max(5, Number(process.argv[2] ?? 7) || 7);
const WARMUP = 3;

let text = '';
for (let first = 0; first < EVENTS; first += PER_NOTIFICATION) text += `${streamingEnvelope(first, PER_NOTIFICATION)}\r\n`;
const bytes = Buffer.from(text, 'utf8');

function chunks(size: number): Buffer[] {
  return chunksOf(bytes, size);
}

/** Runs `fn` (which returns the number of events it saw) and checks the count. */
function time(fn: () => number): number {
  const start = process.hrtime.bigint();
  const seen = fn();
  const ns = Number(process.hrtime.bigint() - start);
  if (seen !== EVENTS) throw new Error(`counted ${seen} events, expected ${EVENTS}`);
  return ns / 1e6;
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Times every configuration in turn, round-robin, so that drift on a shared machine (other
 * processes, thermal state, GC of a previous configuration) spreads over all of them alike.
 */
function measure(fns: readonly (() => number)[]): number[] {
  for (let i = 0; i < WARMUP; i++) for (const fn of fns) time(fn);
  const runs: number[][] = fns.map(() => []);
  for (let i = 0; i < RUNS; i++) fns.forEach((fn, k) => runs[k]?.push(time(fn)));
  return runs.map(median);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

console.log(
  `Stream: ${fmt(EVENTS)} events in ${EVENTS / PER_NOTIFICATION} envelopes, ${fmt(bytes.length)} bytes; ` +
    `median of ${RUNS} runs after ${WARMUP} warm-up runs; Node ${process.version}`,
);
for (const [label, size] of [
  ['64 KiB chunks', 64 * 1024],
  ['1,460 B chunks', 1460],
] as const) {
  const parts = chunks(size);
  const [ours = 0, saxNs = 0, saxPlain = 0] = measure([
    () => envelopeParser(parts),
    () => rawSaxes(parts, true),
    () => rawSaxes(parts, false),
  ]);
  const rate = (ms: number): string => `${fmt(EVENTS / (ms / 1000)).padStart(10)} events/s (${ms.toFixed(1).padStart(6)} ms)`;
  console.log(`\n${label} (${parts.length} chunks)`);
  console.log(`  EnvelopeParser              ${rate(ours)}`);
  console.log(`  raw saxes, xmlns            ${rate(saxNs)}`);
  console.log(`  raw saxes, no xmlns         ${rate(saxPlain)}`);
  console.log(`  EnvelopeParser / saxes xmlns    = ${(saxNs / ours).toFixed(2)}×`);
  console.log(`  EnvelopeParser / saxes no xmlns = ${(saxPlain / ours).toFixed(2)}×`);
}
