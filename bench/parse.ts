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

const EVENTS = 10_000;
const PER_NOTIFICATION = 50;
const RUNS = Math.max(5, Number(process.argv[2] ?? 7) || 7);
const WARMUP = 3;

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

function id(kind: string, n: number): string {
  // Exchange ids are ~150 base64 characters; the tail varies per object.
  return `AAMkADg4MTg2OTVjLTY5NzItNDliYS05NjRjLWE1Y2NkYmJhNTU4MQBGAAAAAAAnT+v/XrekSJPJnfajaVp7BwB4AcCri66ATqtSWLqPBV/${kind}${n.toString(36).padStart(8, '0')}AAA=`;
}

function event(n: number): string {
  const ts = `<t:TimeStamp>2024-03-05T09:${String(Math.floor(n / 60) % 60).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}Z</t:TimeStamp>`;
  const item = `<t:ItemId Id="${id('item', n)}" ChangeKey="CQAAABYAAAB4AcCri66ATqtSWLqPBV/jAAAMnbCE"/>`;
  const parent = `<t:ParentFolderId Id="${id('fold', n % 7)}" ChangeKey="AQAAAA=="/>`;
  switch (n % 5) {
    case 0:
      return `<t:NewMailEvent>${ts}${item}${parent}</t:NewMailEvent>`;
    case 1:
      return `<t:CreatedEvent>${ts}${item}${parent}</t:CreatedEvent>`;
    case 2:
      return `<t:ModifiedEvent>${ts}${item}${parent}</t:ModifiedEvent>`;
    case 3:
      return `<t:MovedEvent>${ts}${item}${parent}<t:OldItemId Id="${id('oldi', n)}" ChangeKey="CQAAAA=="/><t:OldParentFolderId Id="${id('fold', 99)}" ChangeKey="AQAAAA=="/></t:MovedEvent>`;
    default:
      return `<t:ModifiedEvent>${ts}<t:FolderId Id="${id('fold', n % 7)}" ChangeKey="AgAAAA=="/><t:ParentFolderId Id="${id('root', 0)}" ChangeKey="AQAAAA=="/><t:UnreadCount>${n % 100}</t:UnreadCount></t:ModifiedEvent>`;
  }
}

function envelope(first: number): string {
  let events = '';
  for (let n = first; n < first + PER_NOTIFICATION; n++) events += event(n);
  return (
    `<Envelope xmlns="${SOAP}"><soap11:Header xmlns:soap11="${SOAP}"><ServerVersionInfo xmlns="${T}" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></soap11:Header>` +
    `<soap11:Body xmlns:soap11="${SOAP}"><m:GetStreamingEventsResponse xmlns:t="${T}" xmlns:m="${M}"><m:ResponseMessages>` +
    `<m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications>` +
    `<m:Notification><t:SubscriptionId>FwBleGNoMDMuYm9va2luZ2J1Zy5sb2NhbBAAAACRSuDZ7LUVRZRdTUGgj8dRTln61/P61ggQAAAAXGkYiHJpukmWTKXM27pVgQ==</t:SubscriptionId>` +
    `${events}</m:Notification></m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages>` +
    `</m:GetStreamingEventsResponse></soap11:Body></Envelope>`
  );
}

let text = '';
for (let first = 0; first < EVENTS; first += PER_NOTIFICATION) text += `${envelope(first)}\r\n`;
const bytes = Buffer.from(text, 'utf8');

function chunks(size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
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
