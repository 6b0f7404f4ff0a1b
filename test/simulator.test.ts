/**
 * EwsSimulator core operations over raw HTTP: Subscribe (streaming, pull), GetStreamingEvents,
 * GetEvents, Unsubscribe; every answer is read with our wire layer's parser.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GetEventsMessage, SubscribeMessage } from '../lib/ews/messages.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { call, firstMessage, openStream, post, envelope, req, M, T } from './helpers/ews-http.js';

let sim: EwsSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  expect(sim?.pendingTimers ?? 0).toBe(0);
  sim = undefined;
});

async function subscribe(s: EwsSimulator, body: string, options: Parameters<typeof call>[2] = {}): Promise<SubscribeMessage> {
  const { envelope: env } = await call(s.url, body, options);
  const message = firstMessage(env);
  if (message.kind !== 'Subscribe') throw new Error(`unexpected ${message.kind}`);
  return message;
}

async function getEvents(s: EwsSimulator, id: string, watermark: string): Promise<GetEventsMessage> {
  const message = firstMessage((await call(s.url, req.getEvents(id, watermark))).envelope);
  if (message.kind !== 'GetEvents') throw new Error(`unexpected ${message.kind}`);
  return message;
}

describe('EwsSimulator basics', () => {
  it('listens on 127.0.0.1 at the EWS path and refuses other paths and methods', async () => {
    sim = await EwsSimulator.start();
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/EWS\/Exchange\.asmx$/);
    const other = await post(sim.url.replace('/EWS/Exchange.asmx', '/owa'), '');
    expect(other.status).toBe(404);
  });

  it('rejects invalid options with a RangeError naming the option', async () => {
    await expect(EwsSimulator.start({ timeScale: 0 })).rejects.toThrow(/^timeScale must be a positive number \(got 0\)$/);
    await expect(EwsSimulator.start({ keepAliveIntervalMs: -1 })).rejects.toThrow(/^keepAliveIntervalMs must be a positive number of milliseconds \(got -1\)$/);
    await expect(EwsSimulator.start({ authSchemes: ['Basic', 'Digest' as never] })).rejects.toThrow(/^authSchemes\[1\] must be one of "Basic", "NTLM", "Bearer", "Negotiate" \(got "Digest"\)$/);
    await expect(EwsSimulator.start({ extendedProtection: 'on' as never })).rejects.toThrow(/^extendedProtection must be one of "off", "allow", "require" \(got "on"\)$/);
    await expect(EwsSimulator.start({ tls: { key: '', cert: 'c' } })).rejects.toThrow(/^tls\.key must be a PEM string or Buffer \(got an empty string\)$/);
    await expect(EwsSimulator.start({ serverId: 70_000 })).rejects.toThrow(/^serverId must be 0–65535 \(got 70000\)$/);
    await expect(EwsSimulator.start({ authSchemes: ['Bearer'] })).rejects.toThrow(/verifyToken/);
    await expect(EwsSimulator.start({ maxRecordedRequests: -1 })).rejects.toThrow(/^maxRecordedRequests must be 0–1000000000 \(got -1\)$/);
  });

  it('keeps only the last maxRecordedRequests requests', async () => {
    sim = await EwsSimulator.start({ maxRecordedRequests: 2 });
    for (let i = 0; i < 3; i++) await call(sim.url, req.subscribeStreaming());
    await call(sim.url, req.subscribePull());
    expect(sim.requests.map((r) => (r.request?.operation === 'Subscribe' ? r.request.kind : undefined))).toEqual(['streaming', 'pull']);
    expect(sim.subscriptions).toHaveLength(4);
  });

  it('answers with ServerVersionInfo in a WCF-style s:Envelope', async () => {
    sim = await EwsSimulator.start();
    const { answer, envelope: env } = await call(sim.url, req.subscribeStreaming());
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/xml/);
    expect(answer.body).toMatch(/^<\?xml version="1.0" encoding="utf-8"\?><s:Envelope xmlns:s="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/">/);
    expect(env.serverVersion).toMatchObject({ majorVersion: 15, minorVersion: 1 });
  });

  it('records every request with operation, headers, body, user and mailbox', async () => {
    sim = await EwsSimulator.start();
    await call(sim.url, req.subscribeStreaming());
    const [recorded] = sim.requests;
    expect(recorded).toMatchObject({ operation: 'Subscribe', user: 'alice@contoso.com', mailbox: 'alice@contoso.com', status: 200 });
    expect(recorded?.headers['content-type']).toMatch(/text\/xml/);
    expect(recorded?.headers['authorization']).toBe('Basic [redacted]'); // never the credentials
    expect(recorded?.request).toMatchObject({ operation: 'Subscribe', kind: 'streaming', eventTypes: expect.arrayContaining(['NewMail']) });
  });
});

describe('streaming', () => {
  it('delivers events on ONE chunked response, without watermarks, identifiable by sequenceOf', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const { subscriptionId } = await subscribe(sim, req.subscribeStreaming());
    expect(subscriptionId).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const stream = openStream(sim.url, [subscriptionId!]);
    // Headers arrive at once, before any envelope.
    await new Promise<void>((resolve) => {
      const poll = (): void => void (stream.status ? resolve() : setTimeout(poll, 5));
      poll();
    });
    expect(stream.headers['transfer-encoding']).toBe('chunked');

    const first = sim.deliver('alice@contoso.com', { type: 'NewMail' });
    const second = sim.deliver('Alice@Contoso.com', { type: 'Created', folder: 'inbox' });
    expect([first.seq, second.seq]).toEqual([1, 2]);
    await stream.waitFor((envs) => envs.length >= 1, 'a notification');
    const [message] = stream.messages;
    expect(message?.responseCode).toBe('NoError');
    const events = message!.notifications[0]!.events;
    expect(events.map((e) => e.type)).toEqual(['NewMail', 'Created']);
    expect(events.every((e) => e.watermark === undefined)).toBe(true);
    expect(events.map(sequenceOf)).toEqual([1, 2]);
    expect(message!.notifications[0]!.subscriptionId).toBe(subscriptionId);
    // Real Exchange 2016 framing: unprefixed Envelope, soap11 Header/Body, m:Notification.
    expect(stream.raw).toMatch(/^<Envelope xmlns="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/"><soap11:Header/);
    expect(stream.raw).toContain('<m:Notifications><m:Notification><t:SubscriptionId>');
    stream.abort();
  });

  it('writes keep-alives when idle and Closed at the (time-scaled) ConnectionTimeout', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 40, timeScale: 0.005 }); // 1 minute = 300 ms
    const { subscriptionId } = await subscribe(sim, req.subscribeStreaming());
    const started = Date.now();
    const stream = openStream(sim.url, [subscriptionId!], { timeoutMinutes: 1 });
    await stream.finished();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    const statuses = stream.messages.map((m) => m.connectionStatus);
    expect(statuses.filter((s) => s === 'OK').length).toBeGreaterThanOrEqual(2);
    expect(statuses.at(-1)).toBe('Closed');
    expect(stream.error).toBeUndefined();
    // The subscription survives the connection's end and can be reopened.
    expect(sim.subscriptions.find((s) => s.id === subscriptionId)?.connected).toBe(false);
  });

  it('keeps events that happen while no connection is open and delivers them on the next', async () => {
    sim = await EwsSimulator.start();
    const { subscriptionId } = await subscribe(sim, req.subscribeStreaming());
    const delivered = [1, 2, 3].map(() => sim!.deliver('alice@contoso.com', { type: 'NewMail' }));
    const stream = openStream(sim.url, [subscriptionId!]);
    await stream.waitFor((envs) => envs.length >= 1, 'pending events');
    expect(stream.messages[0]!.notifications[0]!.events.map(sequenceOf)).toEqual(delivered.map((d) => d.seq));
    stream.abort();
  });

  it('filters by folder and event type; SubscribeToAllFolders sees every folder', async () => {
    sim = await EwsSimulator.start();
    const inboxOnly = await subscribe(sim, req.subscribeStreaming({ folders: ['inbox'], eventTypes: ['NewMailEvent'] }));
    const all = await subscribe(sim, req.subscribeStreaming({ folders: 'all' }));
    sim.deliver('alice@contoso.com', { type: 'Created', folder: 'calendar' });
    sim.deliver('alice@contoso.com', { type: 'Modified', folder: 'inbox' });
    const mail = sim.deliver('alice@contoso.com', { type: 'NewMail' });
    const stream = openStream(sim.url, [inboxOnly.subscriptionId!, all.subscriptionId!]);
    await stream.waitFor((envs) => envs.length >= 1, 'events');
    const bySub = new Map(stream.messages[0]!.notifications.map((n) => [n.subscriptionId, n.events.map(sequenceOf)]));
    expect(bySub.get(inboxOnly.subscriptionId!)).toEqual([mail.seq]);
    expect(bySub.get(all.subscriptionId!)).toEqual([1, 2, 3]);
    stream.abort();
  });

  it('sends ErrorNewEventStreamConnectionOpened to the older connection when a newer one takes a subscription', async () => {
    sim = await EwsSimulator.start();
    const a = await subscribe(sim, req.subscribeStreaming());
    const b = await subscribe(sim, req.subscribeStreaming());
    const older = openStream(sim.url, [a.subscriptionId!, b.subscriptionId!]);
    await new Promise((r) => setTimeout(r, 50));
    const newer = openStream(sim.url, [a.subscriptionId!]);
    await older.waitFor((envs) => envs.length >= 1, 'the takeover error');
    expect(older.messages[0]).toMatchObject({
      responseClass: 'Error',
      responseCode: 'ErrorNewEventStreamConnectionOpened',
      errorSubscriptionIds: [a.subscriptionId],
    });
    expect(older.messages[0]!.connectionStatus).toBeUndefined(); // b is still on it
    const ev = sim.deliver('alice@contoso.com', { type: 'NewMail' });
    await newer.waitFor((envs) => envs.length >= 1, 'the event on the new connection');
    await older.waitFor((envs) => envs.length >= 2, 'the event for b on the old connection');
    expect(newer.messages[0]!.notifications.map((n) => n.subscriptionId)).toEqual([a.subscriptionId]);
    expect(older.messages[1]!.notifications.map((n) => n.subscriptionId)).toEqual([b.subscriptionId]);
    expect(sequenceOf(newer.messages[0]!.notifications[0]!.events[0]!)).toBe(ev.seq);
    // Taking the last subscription closes the old connection.
    const third = openStream(sim.url, [b.subscriptionId!]);
    await older.finished();
    expect(older.messages.at(-1)).toMatchObject({ responseCode: 'ErrorNewEventStreamConnectionOpened', connectionStatus: 'Closed' });
    newer.abort();
    third.abort();
  });

  it('reports unknown subscription ids with ErrorSubscriptionIds and closes when none is left', async () => {
    sim = await EwsSimulator.start();
    const good = await subscribe(sim, req.subscribeStreaming());
    const mixed = openStream(sim.url, [good.subscriptionId!, 'bm90LWEtc3Vic2NyaXB0aW9u']);
    await mixed.waitFor((envs) => envs.length >= 1, 'the error');
    expect(mixed.messages[0]).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', errorSubscriptionIds: ['bm90LWEtc3Vic2NyaXB0aW9u'] });
    expect(mixed.messages[0]!.connectionStatus).toBeUndefined();
    mixed.abort();
    const none = openStream(sim.url, ['bm90LWEtc3Vic2NyaXB0aW9u']);
    await none.finished();
    expect(none.messages).toHaveLength(1);
    expect(none.messages[0]).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', connectionStatus: 'Closed' });
  });

  it('forceClose() ends every stream with Closed; the subscriptions stay', async () => {
    sim = await EwsSimulator.start();
    const { subscriptionId } = await subscribe(sim, req.subscribeStreaming());
    const stream = openStream(sim.url, [subscriptionId!]);
    await new Promise((r) => setTimeout(r, 30));
    expect(sim.openStreamingConnections).toBe(1);
    sim.forceClose();
    await stream.finished();
    expect(stream.messages.at(-1)).toMatchObject({ responseCode: 'NoError', connectionStatus: 'Closed' });
    expect(sim.subscriptions).toHaveLength(1);
    expect(sim.openStreamingConnections).toBe(0);
  });

  it('close() ends open streams gracefully and leaves no timers', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 10 });
    const { subscriptionId } = await subscribe(sim, req.subscribeStreaming());
    const stream = openStream(sim.url, [subscriptionId!]);
    await stream.waitFor((envs) => envs.length >= 1, 'a keep-alive');
    await sim.close();
    await stream.finished();
    expect(stream.messages.at(-1)?.connectionStatus).toBe('Closed');
    expect(sim.pendingTimers).toBe(0);
    await sim.close(); // idempotent
  });
});

describe('pull', () => {
  it('returns a StatusEvent with a watermark when idle, and PreviousWatermark = the watermark sent', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribePull());
    expect(sub.watermark).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const message = await getEvents(sim, sub.subscriptionId!, sub.watermark!);
    expect(message.responseCode).toBe('NoError');
    expect(message.notification).toMatchObject({ subscriptionId: sub.subscriptionId, previousWatermark: sub.watermark, moreEvents: false });
    expect(message.notification!.events).toEqual([{ type: 'Status', watermark: expect.any(String) }]);
  });

  it('pages 120 events as 50 + 50 + 20 with MoreEvents, each event with its own watermark', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribePull());
    const delivered = Array.from({ length: 120 }, () => sim!.deliver('alice@contoso.com', { type: 'NewMail' }));
    const seen: number[] = [];
    let watermark = sub.watermark!;
    const sizes: Array<[number, boolean]> = [];
    for (;;) {
      const message = await getEvents(sim, sub.subscriptionId!, watermark);
      const n = message.notification!;
      expect(n.previousWatermark).toBe(watermark);
      sizes.push([n.events.length, n.moreEvents]);
      for (const e of n.events) seen.push(sequenceOf(e)!);
      watermark = n.events.at(-1)!.watermark!;
      if (!n.moreEvents) break;
    }
    expect(sizes).toEqual([
      [50, true],
      [50, true],
      [20, false],
    ]);
    expect(seen).toEqual(delivered.map((d) => d.seq));
    // Asking again from the last watermark: nothing new, a status event.
    const idle = await getEvents(sim, sub.subscriptionId!, watermark);
    expect(idle.notification!.events[0]!.type).toBe('Status');
  });

  it('re-reads from an older watermark (at-least-once resume) and refuses unknown watermarks', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribePull());
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    const once = await getEvents(sim, sub.subscriptionId!, sub.watermark!);
    const again = await getEvents(sim, sub.subscriptionId!, sub.watermark!);
    expect(again.notification!.events).toEqual(once.notification!.events);
    const bad = await getEvents(sim, sub.subscriptionId!, 'AAAAAGUhAAAAAAAAAQ==');
    expect(bad).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorInvalidWatermark' });
  });

  it('resumes a new subscription from a watermark given to Subscribe', async () => {
    sim = await EwsSimulator.start();
    const first = await subscribe(sim, req.subscribePull());
    const missed = sim.deliver('alice@contoso.com', { type: 'NewMail' });
    await call(sim.url, req.unsubscribe(first.subscriptionId!));
    const resumed = await subscribe(sim, req.subscribePull({ watermark: first.watermark! }));
    expect(resumed.watermark).toBe(first.watermark);
    const message = await getEvents(sim, resumed.subscriptionId!, resumed.watermark!);
    expect(message.notification!.events.map(sequenceOf)).toEqual([missed.seq]);
    const refused = await subscribe(sim, req.subscribePull({ watermark: 'AAAAAGUhAAAAAAAAAQ==' }));
    expect(refused.responseCode).toBe('ErrorInvalidWatermark');
  });

  it('expires a subscription that is not polled within its Timeout', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001 }); // Timeout 1 = 60 ms
    const sub = await subscribe(sim, req.subscribePull({ timeout: 1 }));
    await new Promise((r) => setTimeout(r, 150));
    expect(sim.subscriptions).toHaveLength(0);
    const message = await getEvents(sim, sub.subscriptionId!, sub.watermark!);
    expect(message).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorExpiredSubscription' });
  });

  it('GetEvents on a streaming subscription is refused', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribeStreaming());
    const message = await getEvents(sim, sub.subscriptionId!, 'AAAAAGUhAAAAAAAAAQ==');
    expect(message.responseCode).toBe('ErrorInvalidPullSubscriptionId');
  });
});

describe('Unsubscribe', () => {
  it('removes the subscription; a second Unsubscribe gets ErrorSubscriptionNotFound', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribePull());
    const ok = firstMessage((await call(sim.url, req.unsubscribe(sub.subscriptionId!))).envelope);
    expect(ok).toMatchObject({ kind: 'Unsubscribe', responseCode: 'NoError' });
    expect(sim.subscriptions).toHaveLength(0);
    const again = firstMessage((await call(sim.url, req.unsubscribe(sub.subscriptionId!))).envelope);
    expect(again).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorSubscriptionNotFound' });
    const events = await getEvents(sim, sub.subscriptionId!, sub.watermark!);
    expect(events.responseCode).toBe('ErrorSubscriptionNotFound');
  });

  it('unsubscribing the last subscription of a stream closes it', async () => {
    sim = await EwsSimulator.start();
    const sub = await subscribe(sim, req.subscribeStreaming());
    const stream = openStream(sim.url, [sub.subscriptionId!]);
    await new Promise((r) => setTimeout(r, 30));
    await call(sim.url, req.unsubscribe(sub.subscriptionId!));
    await stream.finished();
    expect(stream.messages.at(-1)?.connectionStatus).toBe('Closed');
  });
});

describe('request validation (ErrorSchemaValidation, as Exchange answers)', () => {
  const cases: Array<[string, string]> = [
    ['ConnectionTimeout 0', req.getStreamingEvents(['abc'], 0)],
    ['ConnectionTimeout 31', req.getStreamingEvents(['abc'], 31)],
    ['more than 200 subscription ids', req.getStreamingEvents(Array.from({ length: 201 }, (_, i) => `id${i}`))],
    ['elements out of order', `<m:GetEvents><m:Watermark>AAAA</m:Watermark><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>`],
    ['a missing required element', `<m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>`],
    ['an unknown event type', req.subscribeStreaming({ eventTypes: ['NewMail'] })],
    ['pull Timeout 0', req.subscribePull({ timeout: 0 })],
    ['pull Timeout 1441', req.subscribePull({ timeout: 1441 })],
    ['a Watermark on a streaming subscription', `<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Watermark>AAAA</t:Watermark></m:StreamingSubscriptionRequest></m:Subscribe>`],
    ['an unknown distinguished folder', req.subscribeStreaming({ folders: ['nosuchfolder'] })],
    ['SubscriptionId in the wrong namespace', `<m:GetStreamingEvents><m:SubscriptionIds><m:SubscriptionId>x</m:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>`],
    ['MaxChangesReturned 513', req.syncFolderItems({ max: 513 })],
  ];
  it.each(cases)('%s → HTTP 500 SOAP fault with e:ResponseCode ErrorSchemaValidation', async (_name, body) => {
    sim ??= await EwsSimulator.start();
    const { answer, envelope: env } = await call(sim.url, body);
    expect(answer.status).toBe(500);
    expect(env.body.type).toBe('fault');
    if (env.body.type !== 'fault') return;
    expect(env.body.fault.responseCode).toBe('ErrorSchemaValidation');
    expect(env.body.fault.faultCode).toMatch(/ErrorSchemaValidation$/);
    expect(env.body.fault.faultString).toMatch(/^The request failed schema validation: /);
  });

  it('answers a body that is not XML, or not SOAP, with ErrorSchemaValidation', async () => {
    sim = await EwsSimulator.start();
    for (const body of ['not xml at all', `<Envelope xmlns="urn:other"><Body/></Envelope>`, '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>']) {
      const answer = await post(sim.url, body);
      expect(answer.status).toBe(500);
      expect(answer.body).toContain('<e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode>');
    }
  });

  it('answers an EWS operation it does not simulate with ErrorInvalidRequest', async () => {
    sim = await EwsSimulator.start();
    const { answer, envelope: env } = await call(sim.url, `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>`);
    expect(answer.status).toBe(500);
    expect(env.body.type === 'fault' && env.body.fault.responseCode).toBe('ErrorInvalidRequest');
    expect(sim.requests[0]?.operation).toBe('GetFolder');
  });

  it('runs an extra validateRequest hook and turns its messages into ErrorSchemaValidation', async () => {
    const seen: string[] = [];
    sim = await EwsSimulator.start({
      validateRequest: (xml) => {
        seen.push(xml);
        return xml.includes('calendar') ? ['calendar is not allowed here'] : undefined;
      },
    });
    const ok = await call(sim.url, req.subscribeStreaming());
    expect(ok.answer.status).toBe(200);
    const refused = await call(sim.url, req.subscribeStreaming({ folders: ['calendar'] }));
    expect(refused.answer.status).toBe(500);
    expect(refused.envelope.body.type === 'fault' && refused.envelope.body.fault.faultString).toContain('calendar is not allowed here');
    expect(seen).toHaveLength(2);
  });

  it('accepts requests written with a default namespace and unprefixed elements', async () => {
    sim = await EwsSimulator.start();
    const xml =
      `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="${T}"><soap:Body>` +
      `<Subscribe xmlns="${M}"><PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds>` +
      `<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></PullSubscriptionRequest></Subscribe></soap:Body></soap:Envelope>`;
    const answer = await post(sim.url, xml);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('<m:ResponseCode>NoError</m:ResponseCode>');
    void envelope;
  });
});
