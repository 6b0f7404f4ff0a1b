/**
 * What the EwsSimulator writes validates against Microsoft's EWS schema (ordinary responses, push
 * POSTs, and streaming envelopes apart from the documented `m:Notification` deviation), and its
 * own strict request reader agrees with the XSD about which requests are valid — so the simulator
 * cannot let our client drift from the schema. Needs ../shared (skipped without it).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildGetEventsRequest,
  buildGetStreamingEventsRequest,
  buildPullSubscribeRequest,
  buildPushSubscribeRequest,
  buildStreamingSubscribeRequest,
  buildSyncFolderItemsRequest,
  buildUnsubscribeRequest,
} from '../lib/ews/requests.js';
import { buildSendNotificationResult } from '../lib/ews/send-notification.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { basic, call, envelope, firstMessage, impersonating, openStream, post, req, StreamReader } from './helpers/ews-http.js';
import { schemaAvailable, schemaSkipReason, validateSoapBody } from './helpers/schema.js';
import { until } from './helpers/until.js';

let sim: EwsSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const ALICE = 'alice@contoso.com';

/** Exercises every response shape once and returns the raw bodies. */
async function collectResponses(s: EwsSimulator): Promise<Record<string, string>> {
  const bodies: Record<string, string> = {};
  const keep = async (name: string, body: string, header?: string): Promise<string> => {
    const answer = await post(s.url, envelope(body, header));
    expect(answer.status, name).toBe(200);
    bodies[name] = answer.body;
    return answer.body;
  };
  await keep('Subscribe streaming', req.subscribeStreaming());
  const pull = firstMessage((await call(s.url, req.subscribePull({ folders: 'all' }))).envelope);
  if (pull.kind !== 'Subscribe') throw new Error('unexpected');
  await keep('GetEvents status', req.getEvents(pull.subscriptionId!, pull.watermark!));
  s.deliver(ALICE, { type: 'NewMail' });
  const created = s.deliver(ALICE, { type: 'Created', folder: 'calendar' });
  s.deliver(ALICE, { type: 'Modified', itemId: created.itemId!.id, folder: 'calendar', isRead: true });
  s.deliver(ALICE, { type: 'Modified', on: 'folder', folder: 'inbox', unreadCount: 3 });
  s.deliver(ALICE, { type: 'Moved', from: 'inbox', to: 'Archive' });
  s.deliver(ALICE, { type: 'Copied', from: 'calendar', to: 'Archive' });
  s.deliver(ALICE, { type: 'Moved', on: 'folder', folder: 'Projects', from: 'msgfolderroot', to: 'Archive' });
  s.deliver(ALICE, { type: 'FreeBusyChanged', folder: 'calendar' });
  s.deliver(ALICE, { type: 'Deleted', folder: 'calendar' });
  await keep('GetEvents events', req.getEvents(pull.subscriptionId!, pull.watermark!));
  await keep('GetEvents error', req.getEvents(pull.subscriptionId!, 'AAAAAGUhAAAAAAAAAQ=='));
  await keep('Subscribe error', req.subscribePull({ watermark: 'AAAAAGUhAAAAAAAAAQ==' }));
  await keep('Subscribe push', req.subscribePush({ url: 'http://127.0.0.1:9/listener', statusFrequency: 30 }));
  await keep('Subscribe impersonated', req.subscribePull(), impersonating('bob@contoso.com'));
  await keep('SyncFolderItems initial', req.syncFolderItems({ folder: 'calendar' }));
  await keep(
    'SyncFolderItems with ParentFolderId (gap recovery)',
    '<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:ParentFolderId"/></t:AdditionalProperties></m:ItemShape>' +
      '<m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId><m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>',
  );
  await keep('SyncFolderItems error', req.syncFolderItems({ syncState: 'bm9wZQ==' }));
  await keep('Unsubscribe', req.unsubscribe(pull.subscriptionId!));
  await keep('Unsubscribe error', req.unsubscribe(pull.subscriptionId!));
  return bodies;
}

describe.skipIf(!schemaAvailable)(`EwsSimulator output is schema-valid (${schemaAvailable ? 'EWS schema found' : schemaSkipReason})`, () => {
  it('every ordinary response validates', async () => {
    sim = await EwsSimulator.start();
    const bodies = await collectResponses(sim);
    const names = Object.keys(bodies);
    const results = await Promise.all(names.map((n) => validateSoapBody(bodies[n]!)));
    const invalid = names.map((n, i) => ({ n, r: results[i]! })).filter((x) => !x.r.valid);
    expect(invalid.map((x) => `${x.n}: ${x.r.errors.join('; ')}`)).toEqual([]);
    expect(results.every((r) => r.parts >= 2)).toBe(true); // ServerVersionInfo + the response
  });

  it('push SendNotification POSTs validate (events, status, error class)', async () => {
    const posts: string[] = [];
    const listener = createServer((rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        posts.push(Buffer.concat(chunks).toString('utf8'));
        rs.writeHead(200, { 'Content-Type': 'text/xml' }).end(buildSendNotificationResult('OK'));
      });
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      sim = await EwsSimulator.start({ timeScale: 0.001 });
      const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/`;
      await call(sim.url, req.subscribePush({ url, statusFrequency: 1, folders: ['inbox', 'calendar'] }));
      sim.deliver(ALICE, { type: 'NewMail' });
      sim.deliver(ALICE, { type: 'Moved', from: 'inbox', to: 'calendar' });
      sim.deliver(ALICE, { type: 'Modified', on: 'folder', unreadCount: 0 });
      await until(() => posts.length >= 2, 'two posts', { intervalMs: 10 });
      sim.inject({ type: 'missed-events' });
      await until(() => posts.length >= 4, 'four posts', { intervalMs: 10 });
      await sim.close();
      expect(posts.length).toBeGreaterThanOrEqual(4);
      expect(posts.some((p) => p.includes('<t:StatusEvent>'))).toBe(true);
      expect(posts.some((p) => p.includes('ErrorMissedNotificationEvents'))).toBe(true);
      const results = await Promise.all(posts.map((p) => validateSoapBody(p)));
      expect(results.flatMap((r) => r.errors)).toEqual([]);
    } finally {
      listener.closeAllConnections();
      await new Promise((r) => listener.close(r));
    }
  });

  it('a streaming response validates except for the real-world m:Notification deviation', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 30 });
    const a = firstMessage((await call(sim.url, req.subscribeStreaming())).envelope) as { subscriptionId: string };
    const b = firstMessage((await call(sim.url, req.subscribeStreaming({ folders: 'all' }))).envelope) as { subscriptionId: string };
    const stream = openStream(sim.url, [a.subscriptionId, b.subscriptionId, 'bm90LWEtc3Vi'], { timeoutMinutes: 1 });
    await stream.waitFor((e) => e.length >= 1, 'the unknown-id error');
    sim.deliver(ALICE, { type: 'NewMail' });
    sim.deliver(ALICE, { type: 'Moved', from: 'inbox', to: 'deleteditems' });
    await stream.waitFor((e) => e.length >= 3, 'events and a keep-alive');
    const takeover = openStream(sim.url, [a.subscriptionId]);
    await stream.waitFor(() => stream.messages.some((m) => m.responseCode === 'ErrorNewEventStreamConnectionOpened'), 'the takeover');
    sim.forceClose();
    await stream.finished();
    await takeover.finished();
    const raw = stream.raw;
    const strict = await validateSoapBody(raw);
    const lenient = await validateSoapBody(raw, { allowMessagesNotification: true });
    expect(lenient.errors).toEqual([]);
    expect(lenient.parts).toBeGreaterThanOrEqual(10);
    // The strict schema rejects exactly the m:Notification elements real servers write.
    expect(strict.valid).toBe(false);
    expect(strict.errors.every((e) => /Notification/.test(e))).toBe(true);
  });
});

describe.skipIf(!schemaAvailable)(`the strict request reader agrees with the XSD (${schemaAvailable ? 'EWS schema found' : schemaSkipReason})`, () => {
  const xsd = async (xml: string): Promise<readonly string[] | undefined> => {
    const result = await validateSoapBody(xml);
    return result.valid ? undefined : result.errors;
  };

  it('accepts every request our builders write, with the XSD as validateRequest', { timeout: 90_000 }, async () => {
    sim = await EwsSimulator.start({ validateRequest: xsd });
    const streaming = firstMessage((await call(sim.url, req.subscribeStreaming())).envelope) as { subscriptionId: string };
    const bodies = [
      buildStreamingSubscribeRequest({ folders: ['inbox', 'calendar'], eventTypes: ['NewMail', 'Moved'] }),
      buildStreamingSubscribeRequest({ subscribeToAllFolders: true, impersonation: { smtpAddress: 'bob@contoso.com' } }),
      buildPullSubscribeRequest({ folders: ['inbox'], timeoutMinutes: 1440 }),
      buildPushSubscribeRequest({ folders: ['inbox'], url: 'http://127.0.0.1:9/listener', statusFrequencyMinutes: 1 }),
      buildGetEventsRequest({ subscriptionId: 'abc', watermark: 'AAAAAGUhAAAAAAAAAQ==' }),
      buildUnsubscribeRequest({ subscriptionId: 'abc' }),
      buildSyncFolderItemsRequest({ folder: 'inbox', maxChangesReturned: 512 }),
    ];
    // Concurrent, so the XSD checks share xmllint runs.
    const answers = await Promise.all(bodies.map((body) => post(sim!.url, body)));
    answers.forEach((answer, i) => expect(answer.status, `${answer.body}\n${bodies[i]}`).toBe(200));
    const stream = new StreamReader(sim.url, buildGetStreamingEventsRequest({ subscriptionIds: [streaming.subscriptionId], connectionTimeoutMinutes: 1 }));
    // The XSD check takes a moment.
    await until(() => stream.status !== 0 || stream.ended, 'the stream answered', { intervalMs: 20 });
    expect(stream.status).toBe(200);
    sim.deliver(ALICE, { type: 'NewMail' });
    await stream.waitFor((e) => e.length >= 1, 'an event');
    stream.abort();
  });

  it('rejects the same invalid requests the XSD rejects', async () => {
    sim = await EwsSimulator.start();
    const invalid = [
      req.getStreamingEvents(['abc'], 0),
      req.getStreamingEvents(['abc'], 31),
      `<m:GetEvents><m:Watermark>AAAA</m:Watermark><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>`,
      `<m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>`,
      req.subscribeStreaming({ eventTypes: ['NewMail'] }),
      req.subscribePull({ timeout: 0 }),
      req.subscribeStreaming({ folders: ['nosuchfolder'] }),
      `<m:GetStreamingEvents><m:SubscriptionIds><m:SubscriptionId>x</m:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>`,
      req.syncFolderItems({ max: 0 }),
      `<m:Subscribe><m:StreamingSubscriptionRequest><t:EventTypes/></m:StreamingSubscriptionRequest></m:Subscribe>`,
    ].map((b) => envelope(b));
    const xsdVerdicts = await Promise.all(invalid.map((xml) => validateSoapBody(xml)));
    expect(xsdVerdicts.map((v) => v.valid)).toEqual(invalid.map(() => false));
    for (const xml of invalid) {
      const answer = await post(sim.url, xml, { auth: basic(ALICE) });
      expect(answer.status, xml).toBe(500);
      expect(answer.body).toContain('ErrorSchemaValidation');
    }
    // The one rule the simulator adds to the XSD: Exchange's documented 200-subscription limit.
    const many = envelope(req.getStreamingEvents(Array.from({ length: 201 }, (_, i) => `id${i}`)));
    expect((await validateSoapBody(many)).valid).toBe(true);
    expect((await post(sim.url, many)).status).toBe(500);
  });
});
