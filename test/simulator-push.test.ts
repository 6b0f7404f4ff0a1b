/**
 * EwsSimulator push subscriptions: anonymous SendNotification POSTs to a listener on 127.0.0.1,
 * OK/Unsubscribe, StatusEvents when idle, Exchange's retry schedule (time-scaled) and expiry.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildSendNotificationResult } from '../lib/ews/send-notification.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import type { SendNotificationMessage } from '../lib/ews/messages.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { call, firstMessage, req } from './helpers/ews-http.js';
import { HANG_GUARD_MS, until } from './helpers/until.js';

interface Received {
  readonly at: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly message: SendNotificationMessage;
}

type Answer = 'OK' | 'Unsubscribe' | 500 | 'garbage';

/** A push listener that answers with whatever `answers` says next (the last one repeats). */
class Listener {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly answers: Answer[],
  ) {}

  static async start(answers: Answer[] = ['OK']): Promise<Listener> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const listener = new Listener(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/listener`, answers);
    server.on('request', (rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const env = parseEnvelope(body);
        const message = env.body.type === 'response' ? env.body.messages[0] : undefined;
        if (message?.kind !== 'SendNotification') throw new Error(`not a SendNotification: ${body}`);
        listener.received.push({ at: Date.now(), headers: rq.headers, body, message });
        const answer = listener.answers.length > 1 ? listener.answers.shift()! : listener.answers[0]!;
        if (answer === 500) rs.writeHead(500).end('boom');
        else if (answer === 'garbage') rs.writeHead(200, { 'Content-Type': 'text/xml' }).end('<notsoap/>');
        else rs.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(buildSendNotificationResult(answer));
        for (const w of listener.waiters.splice(0)) w();
      });
    });
    return listener;
  }

  /** Woken by each post; `timeoutMs` is a hang guard (HANG_GUARD_MS of ./helpers/until.ts), not a speed bound. */
  async waitFor(count: number, timeoutMs = HANG_GUARD_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`listener got ${this.received.length} posts, wanted ${count}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let sim: EwsSimulator | undefined;
let listener: Listener | undefined;
afterEach(async () => {
  await sim?.close();
  expect(sim?.pendingTimers ?? 0).toBe(0);
  await listener?.close();
  sim = undefined;
  listener = undefined;
});

const ALICE = 'alice@contoso.com';

async function pushSub(s: EwsSimulator, url: string, statusFrequency = 1): Promise<{ id: string; watermark: string }> {
  const message = firstMessage((await call(s.url, req.subscribePush({ url, statusFrequency }))).envelope);
  if (message.kind !== 'Subscribe' || !message.subscriptionId || !message.watermark) throw new Error(`subscribe failed: ${JSON.stringify(message)}`);
  return { id: message.subscriptionId, watermark: message.watermark };
}

describe('push', () => {
  it('POSTs SendNotification anonymously with watermarks; events arrive in order', async () => {
    listener = await Listener.start();
    sim = await EwsSimulator.start();
    const sub = await pushSub(sim, listener.url, 30);
    const delivered = [sim.deliver(ALICE, { type: 'NewMail' }), sim.deliver(ALICE, { type: 'Modified' })];
    await listener.waitFor(1);
    const [first] = listener.received;
    expect(first!.headers.authorization).toBeUndefined();
    expect(first!.headers['content-type']).toMatch(/^text\/xml/);
    const n = first!.message.notification!;
    expect(first!.message).toMatchObject({ responseClass: 'Success', responseCode: 'NoError' });
    expect(n.subscriptionId).toBe(sub.id);
    expect(n.previousWatermark).toBe(sub.watermark);
    expect(n.events.map(sequenceOf)).toEqual(delivered.map((d) => d.seq));
    expect(n.events.map((e) => e.watermark)).toEqual(delivered.map((d) => d.watermark));
    // The next push continues from the last event's watermark.
    const third = sim.deliver(ALICE, { type: 'Deleted' });
    await listener.waitFor(2);
    expect(listener.received[1]!.message.notification).toMatchObject({ previousWatermark: delivered[1]!.watermark });
    expect(listener.received[1]!.message.notification!.events.map(sequenceOf)).toEqual([third.seq]);
    await until(() => sim!.pushAttempts.length === 2, 'sim!.pushAttempts.length === 2');
    expect(sim.pushAttempts.map((a) => a.subscriptionStatus)).toEqual(['OK', 'OK']);
  });

  it('sends a StatusEvent every StatusFrequency when idle (time-scaled)', async () => {
    listener = await Listener.start();
    sim = await EwsSimulator.start({ timeScale: 0.001 }); // StatusFrequency 1 = 60 ms
    const sub = await pushSub(sim, listener.url, 1);
    await listener.waitFor(3);
    for (const r of listener.received) {
      expect(r.message.notification!.events).toEqual([{ type: 'Status', watermark: sub.watermark }]);
    }
    const gaps = listener.received.slice(1).map((r, i) => r.at - listener!.received[i]!.at);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(45);
  });

  it('drops the subscription when the listener answers Unsubscribe', async () => {
    listener = await Listener.start(['Unsubscribe']);
    sim = await EwsSimulator.start();
    await pushSub(sim, listener.url, 30);
    sim.deliver(ALICE, { type: 'NewMail' });
    await listener.waitFor(1);
    await until(() => sim!.subscriptions.length === 0, 'sim!.subscriptions.length === 0');
  });

  it('retries a failing listener after 30 s, 1, 2 min… (scaled) and loses nothing when it recovers', async () => {
    listener = await Listener.start([500, 'garbage', 'OK']);
    sim = await EwsSimulator.start({ timeScale: 0.002 }); // 30 s = 60 ms, 1 min = 120 ms
    await pushSub(sim, listener.url, 30);
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await listener.waitFor(3);
    const [a, b, c] = listener.received;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(55);
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(115);
    expect(c!.message.notification!.events.map(sequenceOf)).toEqual([event.seq]);
    await until(() => sim!.pushAttempts.length === 3, 'sim!.pushAttempts.length === 3');
    expect(sim.pushAttempts.map((x) => x.subscriptionStatus)).toEqual([undefined, undefined, 'OK']);
    expect(sim.pushAttempts[0]!.status).toBe(500);
    expect(sim.subscriptions).toHaveLength(1);
  });

  it('gives up once the next retry would pass StatusFrequency, and drops the subscription', async () => {
    listener = await Listener.start([500]);
    sim = await EwsSimulator.start({ timeScale: 0.002 });
    // StatusFrequency 4 min: retries at +30 s, +1 min, +2 min (3.5 min in all); the next (+4 min) would pass it.
    await pushSub(sim, listener.url, 4);
    sim.deliver(ALICE, { type: 'NewMail' });
    await listener.waitFor(4);
    await new Promise((r) => setTimeout(r, 700)); // longer than the 4-minute (480 ms) retry that must not happen
    expect(listener.received).toHaveLength(4);
    expect(sim.subscriptions).toHaveLength(0);
  });

  it('treats an unreachable listener as a failure', async () => {
    listener = await Listener.start();
    const deadUrl = listener.url;
    await listener.close();
    listener = undefined;
    sim = await EwsSimulator.start({ timeScale: 0.001 });
    await pushSub(sim, deadUrl, 1);
    sim.deliver(ALICE, { type: 'NewMail' });
    await until(() => sim!.subscriptions.length === 0, 'sim!.subscriptions.length === 0');
    expect(sim.pushAttempts.length).toBe(2); // first try + the 30 s retry; the 1 min one would pass StatusFrequency
    expect(sim.pushAttempts.every((a) => a.error !== undefined)).toBe(true);
  });

  it('reports missed events with an Error-class push and continues', async () => {
    listener = await Listener.start();
    sim = await EwsSimulator.start();
    await pushSub(sim, listener.url, 30);
    sim.inject({ type: 'missed-events' });
    await listener.waitFor(1);
    expect(listener.received[0]!.message).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorMissedNotificationEvents' });
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await listener.waitFor(2);
    expect(listener.received[1]!.message).toMatchObject({ responseClass: 'Success' });
    expect(listener.received[1]!.message.notification!.events.map(sequenceOf)).toEqual([event.seq]);
  });

  it('refuses a push URL that is not http(s)', async () => {
    sim = await EwsSimulator.start();
    const message = firstMessage((await call(sim.url, req.subscribePush({ url: 'ftp://127.0.0.1/x' }))).envelope);
    expect(message).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorInvalidPushSubscriptionUrl' });
  });

  it('close() aborts a post in flight and leaves nothing behind', async () => {
    // A listener that never answers.
    const server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      sim = await EwsSimulator.start();
      await pushSub(sim, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, 30);
      sim.deliver(ALICE, { type: 'NewMail' });
      await new Promise((r) => setTimeout(r, 50));
      await sim.close();
      expect(sim.pendingTimers).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
