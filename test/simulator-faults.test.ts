/**
 * Every EwsSimulator fault, driven over raw HTTP, and how the faults are scoped (operation,
 * mailbox, times, windowMs).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EwsNotXmlError, EwsParseError } from '../lib/errors.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { basic, call, envelope, firstMessage, openStream, post, req } from './helpers/ews-http.js';

let sim: EwsSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  expect(sim?.pendingTimers ?? 0).toBe(0);
  sim = undefined;
});

const ALICE = 'alice@contoso.com';

async function streamingSub(s: EwsSimulator, user = ALICE): Promise<string> {
  const message = firstMessage((await call(s.url, req.subscribeStreaming(), { auth: basic(user) })).envelope);
  if (message.kind !== 'Subscribe' || !message.subscriptionId) throw new Error('subscribe failed');
  return message.subscriptionId;
}

async function pullSub(s: EwsSimulator): Promise<{ id: string; watermark: string }> {
  const message = firstMessage((await call(s.url, req.subscribePull())).envelope);
  if (message.kind !== 'Subscribe' || !message.subscriptionId || !message.watermark) throw new Error('subscribe failed');
  return { id: message.subscriptionId, watermark: message.watermark };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('request-level faults', () => {
  it('server-busy: HTTP 500 ErrorServerBusy with BackOffMilliseconds, for `times` calls', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'server-busy', backOffMs: 1234, times: 2 });
    for (let i = 0; i < 2; i++) {
      const { answer, envelope: env } = await call(sim.url, req.subscribePull());
      expect(answer.status).toBe(500);
      expect(env.body).toMatchObject({ type: 'fault', fault: { responseCode: 'ErrorServerBusy', messageXml: { BackOffMilliseconds: '1234' } } });
    }
    const third = await call(sim.url, req.subscribePull());
    expect(third.answer.status).toBe(200);
    expect(sim.requests.map((r) => r.fault)).toEqual(['server-busy', 'server-busy', undefined]);
  });

  it('http-503: Service Unavailable with Retry-After', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'http-503', retryAfterSeconds: 7 });
    const answer = await post(sim.url, envelope(req.subscribePull()));
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('7');
  });

  it('http-401: refuses good credentials once, with the usual challenges', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'http-401' });
    const refused = await post(sim.url, envelope(req.subscribePull()));
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toEqual(expect.stringContaining('Basic'));
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(200);
  });

  it('html-error-page: an IIS-style HTML page our parser rejects as not XML', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'html-error-page', status: 502 });
    const answer = await post(sim.url, envelope(req.subscribePull()));
    expect(answer.status).toBe(502);
    expect(answer.headers['content-type']).toBe('text/html');
    expect(() => parseEnvelope(answer.body, { httpStatus: 502 })).toThrow(EwsNotXmlError);
  });

  it('malformed-xml: a 200 answer that is not well-formed', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'malformed-xml', operation: 'Subscribe' });
    const answer = await post(sim.url, envelope(req.subscribePull()));
    expect(answer.status).toBe(200);
    expect(() => parseEnvelope(answer.body)).toThrow(EwsParseError);
  });

  it('cut-mid-envelope: the socket dies halfway through an ordinary answer', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'cut-mid-envelope', operation: 'Subscribe' });
    await expect(post(sim.url, envelope(req.subscribePull()))).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(200);
  });

  it('silence: an ordinary answer comes forMs late', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'silence', forMs: 150 });
    const started = Date.now();
    const { answer } = await call(sim.url, req.subscribePull());
    expect(answer.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('trickle: the answer arrives a byte at a time and still parses', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'trickle', bytesPerWrite: 64, intervalMs: 1 });
    const { answer, envelope: env } = await call(sim.url, req.subscribePull());
    expect(answer.status).toBe(200);
    expect(firstMessage(env)).toMatchObject({ kind: 'Subscribe', responseCode: 'NoError' });
  });

  it('scopes faults by operation and mailbox', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'server-busy', backOffMs: 1, operation: 'GetEvents', mailbox: 'bob@contoso.com' });
    const alice = await pullSub(sim);
    expect(firstMessage((await call(sim.url, req.getEvents(alice.id, alice.watermark))).envelope).responseCode).toBe('NoError');
    const bob = firstMessage((await call(sim.url, req.subscribePull(), { auth: basic('bob@contoso.com') })).envelope);
    expect(bob.responseCode).toBe('NoError'); // Subscribe is not in scope
    if (bob.kind !== 'Subscribe') throw new Error('unexpected');
    const busy = await call(sim.url, req.getEvents(bob.subscriptionId!, bob.watermark!), { auth: basic('bob@contoso.com') });
    expect(busy.answer.status).toBe(500);
  });

  it('windowMs: a fault affects every matching call within the window, then none', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'http-503', windowMs: 400 });
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(503);
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(503);
    await sleep(450);
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(200);
  });

  it('clearFaults() disarms what is left; a bad spec is a RangeError', async () => {
    sim = await EwsSimulator.start();
    sim.inject({ type: 'http-503', times: 5 });
    sim.clearFaults();
    expect((await post(sim.url, envelope(req.subscribePull()))).status).toBe(200);
    expect(() => sim!.inject({ type: 'server-busy', backOffMs: -1 })).toThrow(RangeError);
    expect(() => sim!.inject({ type: 'server-busy', backOffMs: -1 })).toThrow(/^fault\.backOffMs must be a number ≥ 0 \(got -1\)$/);
    expect(() => sim!.inject({ type: 'http-503', times: 0 })).toThrow(/^fault\.times must be a number ≥ 1 \(or Infinity\) \(got 0\)$/);
    expect(() => sim!.inject({ type: 'html-error-page', status: 302 })).toThrow(/^fault\.status must be 400–599 \(got 302\)$/);
  });
});

describe('streaming faults', () => {
  it('cut-mid-envelope: the stream breaks inside an envelope; its events are lost, later ones arrive on the next connection', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const id = await streamingSub(sim);
    const stream = openStream(sim.url, [id]);
    await sleep(30);
    sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    sim.deliver(ALICE, { type: 'NewMail' });
    await stream.finished();
    expect(stream.error).toBeDefined();
    expect(stream.envelopes).toHaveLength(0);
    expect(stream.raw.length).toBeGreaterThan(0);
    expect(stream.raw).not.toMatch(/<\/Envelope>$/);
    const later = sim.deliver(ALICE, { type: 'NewMail' });
    const next = openStream(sim.url, [id]);
    await next.waitFor((e) => e.length >= 1, 'the later event');
    expect(next.messages[0]!.notifications[0]!.events.map(sequenceOf)).toEqual([later.seq]);
    next.abort();
  });

  it('silence: no keep-alives or events for forMs; held events follow once it ends', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 20 });
    const id = await streamingSub(sim);
    const stream = openStream(sim.url, [id]);
    await stream.waitFor((e) => e.length >= 1, 'a first keep-alive');
    // The next keep-alive (due within 20 ms) starts the silence instead of being written: nothing
    // arrives from here until forMs later. Judged by arrival times (a lower bound), not by sleeping.
    const silencedAt = performance.now();
    sim.inject({ type: 'silence', forMs: 300 });
    const before = stream.envelopes.length;
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await stream.waitFor((e) => e.length > before, 'traffic after the silence');
    expect(stream.arrivedAt[before]! - silencedAt).toBeGreaterThanOrEqual(295);
    await stream.waitFor(() => stream.messages.some((m) => m.notifications.length > 0), 'the held event');
    const delivered = stream.messages.flatMap((m) => m.notifications.flatMap((n) => n.events.map(sequenceOf)));
    expect(delivered).toEqual([event.seq]);
    stream.abort();
  });

  it('silence: a client that gives up gets the held events on its next connection', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const id = await streamingSub(sim);
    const stream = openStream(sim.url, [id]);
    await sleep(30);
    sim.inject({ type: 'silence', forMs: 10_000 });
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await sleep(50);
    stream.abort();
    await stream.finished();
    const next = openStream(sim.url, [id]);
    await next.waitFor((e) => e.length >= 1, 'the held event');
    expect(next.messages[0]!.notifications[0]!.events.map(sequenceOf)).toEqual([event.seq]);
    next.abort();
  });

  it('malformed-xml: the next envelope is not well-formed', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const id = await streamingSub(sim);
    const stream = openStream(sim.url, [id]);
    await sleep(30);
    sim.inject({ type: 'malformed-xml', operation: 'GetStreamingEvents' });
    sim.deliver(ALICE, { type: 'NewMail' });
    await stream.waitFor(() => stream.error !== undefined, 'a parse error').catch(() => undefined);
    expect(stream.error).toBeInstanceOf(EwsParseError);
    stream.abort();
  });

  it('trickle: a streaming response arrives in tiny writes and parses the same', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const id = await streamingSub(sim);
    sim.inject({ type: 'trickle', operation: 'GetStreamingEvents', bytesPerWrite: 16, intervalMs: 0 });
    const stream = openStream(sim.url, [id]);
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await stream.waitFor((e) => e.length >= 1, 'the event');
    expect(stream.chunks.length).toBeGreaterThan(10);
    expect(sequenceOf(stream.messages[0]!.notifications[0]!.events[0]!)).toBe(event.seq);
    stream.abort();
  });

  it('coalesce-envelopes: several envelopes reach the client in one chunk', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const id = await streamingSub(sim);
    const stream = openStream(sim.url, [id]);
    await sleep(30);
    sim.inject({ type: 'coalesce-envelopes', count: 3 });
    const events = [sim.deliver(ALICE, { type: 'NewMail' })];
    await sleep(20);
    events.push(sim.deliver(ALICE, { type: 'NewMail' }));
    await sleep(20);
    expect(stream.envelopes).toHaveLength(0); // held until the group is complete
    events.push(sim.deliver(ALICE, { type: 'NewMail' }));
    await stream.waitFor((e) => e.length >= 3, 'three envelopes');
    expect(stream.chunks).toHaveLength(1);
    expect(stream.chunks[0]!.toString('utf8').match(/<Envelope /g)).toHaveLength(3);
    expect(stream.messages.map((m) => sequenceOf(m.notifications[0]!.events[0]!))).toEqual(events.map((e) => e.seq));
    expect(() => sim!.inject({ type: 'coalesce-envelopes', count: 1 })).toThrow(/^fault\.count must be an integer ≥ 2 \(got 1\)$/);
    stream.abort();
  });

  it('http-503 on GetStreamingEvents refuses the connection', async () => {
    sim = await EwsSimulator.start();
    const id = await streamingSub(sim);
    sim.inject({ type: 'http-503', operation: 'GetStreamingEvents', retryAfterSeconds: 1 });
    const stream = openStream(sim.url, [id]);
    await stream.finished();
    expect(stream.status).toBe(503);
  });
});

describe('server actions', () => {
  it('forget-subscriptions: in-stream ErrorSubscriptionNotFound for them, Closed when none is left', async () => {
    sim = await EwsSimulator.start();
    const a = await streamingSub(sim);
    const b = await streamingSub(sim);
    const stream = openStream(sim.url, [a, b]);
    await sleep(30);
    sim.inject({ type: 'forget-subscriptions', subscriptionIds: [a] });
    await stream.waitFor((e) => e.length >= 1, 'the error for a');
    expect(stream.messages[0]).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', errorSubscriptionIds: [a] });
    expect(stream.messages[0]!.connectionStatus).toBeUndefined();
    sim.inject({ type: 'forget-subscriptions' });
    await stream.finished();
    expect(stream.messages.at(-1)).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', errorSubscriptionIds: [b], connectionStatus: 'Closed' });
    expect(sim.subscriptions).toHaveLength(0);
  });

  it('forget-subscriptions: GetEvents answers ErrorSubscriptionNotFound', async () => {
    sim = await EwsSimulator.start();
    const sub = await pullSub(sim);
    sim.inject({ type: 'forget-subscriptions', mailbox: ALICE });
    const message = firstMessage((await call(sim.url, req.getEvents(sub.id, sub.watermark))).envelope);
    expect(message).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorSubscriptionNotFound' });
  });

  it('missed-events (streaming): undelivered events are dropped and reported; the subscription lives on', async () => {
    sim = await EwsSimulator.start();
    const id = await streamingSub(sim);
    sim.deliver(ALICE, { type: 'NewMail' }); // pending, never delivered
    sim.inject({ type: 'missed-events' });
    const after = sim.deliver(ALICE, { type: 'NewMail' });
    const stream = openStream(sim.url, [id]);
    await stream.waitFor(() => stream.messages.some((m) => m.notifications.length > 0), 'the later event');
    expect(stream.messages[0]).toMatchObject({ responseCode: 'ErrorMissedNotificationEvents', errorSubscriptionIds: [id] });
    const seqs = stream.messages.flatMap((m) => m.notifications.flatMap((n) => n.events.map(sequenceOf)));
    expect(seqs).toEqual([after.seq]);
    stream.abort();
  });

  it('missed-events (pull): the next GetEvents reports it, later ones skip the dropped events', async () => {
    sim = await EwsSimulator.start();
    const sub = await pullSub(sim);
    sim.deliver(ALICE, { type: 'NewMail' });
    sim.inject({ type: 'missed-events' });
    const after = sim.deliver(ALICE, { type: 'NewMail' });
    const first = firstMessage((await call(sim.url, req.getEvents(sub.id, sub.watermark))).envelope);
    expect(first).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorMissedNotificationEvents' });
    const second = firstMessage((await call(sim.url, req.getEvents(sub.id, sub.watermark))).envelope);
    if (second.kind !== 'GetEvents') throw new Error('unexpected');
    expect(second.notification!.events.map(sequenceOf)).toEqual([after.seq]);
  });
});
