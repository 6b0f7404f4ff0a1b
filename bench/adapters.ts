/**
 * What the adapters cost on top of a source.
 *
 * Run: `npx tsx bench/adapters.ts`.
 *
 *  (a) push-callback dispatch: 100,000 one-event notifications from an in-memory source (spread
 *      over 1 and over 10 subscriptions) through the engine to a synchronous handler answering
 *      `'OK'` — the engine's per-notification overhead (queueing, a microtask hop, acknowledgement).
 *  (b) soap-forwarder: 2,000 one-event notifications POSTed as SendNotification envelopes to a
 *      minimal listener on 127.0.0.1 that answers `OK` (one subscription, so one POST at a time,
 *      as push does) — envelope building, HTTP keep-alive round trip, answer parsing.
 * Medians of 5 runs after a warm-up run.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Subject } from 'rxjs';
import { pushCallback } from '../adapters/push-callback.js';
import { soapForwarder } from '../adapters/soap-forwarder.js';
import { buildSendNotificationResult } from '../lib/ews/send-notification.js';
import type { PushNotification } from '../lib/model.js';

const RUNS = 5;

function notification(subscriptionId: string, i: number): PushNotification {
  return {
    subscriptionId,
    moreEvents: false,
    events: [{ type: 'NewMail', timeStamp: '2024-05-01T10:20:30Z', itemId: { id: `AAMkAD${i}`, changeKey: 'CQAAABYAAAA' }, parentFolderId: { id: 'AQMkAD-inbox' } }],
  };
}

async function dispatch(count: number, subscriptions: number): Promise<number> {
  const source = new Subject<PushNotification>();
  let handled = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const bridge = pushCallback(source, () => {
    if (++handled === count) resolveAll();
    return 'OK';
  });
  const items = Array.from({ length: count }, (_, i) => notification(`sub-${i % subscriptions}`, i));
  const started = performance.now();
  for (const n of items) source.next(n);
  await all;
  const ms = performance.now() - started;
  await bridge.close();
  return ms;
}

async function forward(count: number): Promise<number> {
  const answer = buildSendNotificationResult('OK');
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`;
  const source = new Subject<PushNotification>();
  let posted = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  server.on('request', () => {
    if (++posted === count) setImmediate(resolveAll);
  });
  const forwarder = soapForwarder(source, { url });
  const started = performance.now();
  for (let i = 0; i < count; i++) source.next(notification('sub-1', i));
  await all;
  const ms = performance.now() - started;
  await forwarder.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(name: string, count: number, run: () => Promise<number>): Promise<void> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await run());
  const ms = median(times);
  console.log(`${name.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms  ${Math.round((count / ms) * 1000).toLocaleString('en').padStart(10)} /s  ${((ms * 1000) / count).toFixed(2).padStart(7)} µs each`);
}

await measure('push-callback, 100k notifications, 1 sub', 100_000, () => dispatch(100_000, 1));
await measure('push-callback, 100k notifications, 10 subs', 100_000, () => dispatch(100_000, 10));
await measure('soap-forwarder, 2k POSTs to a local listener', 2_000, () => forward(2_000));
