/**
 * Interop: ews-javascript-api — an independent EWS client nobody here wrote — subscribes (streaming
 * and pull) against the EwsSimulator over HTTP with Basic credentials (WebCredentials) and receives
 * the delivered events. Where ews-javascript-api's own defects show, the tests pin down what it
 * does, so a change in either side is noticed; the defects are described at each test.
 */
import * as ews from 'ews-javascript-api';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsSimulator } from '../lib/testing/index.js';
import { until } from './helpers/until.js';

const ALICE = 'alice@contoso.com';

let sim: EwsSimulator | undefined;
let connection: ews.StreamingSubscriptionConnection | undefined;
afterEach(async () => {
  try {
    if (connection?.IsOpen) connection.Close();
  } catch {
    // already closed by the server
  }
  connection = undefined;
  await sim?.close();
  sim = undefined;
});

function service(url: string): ews.ExchangeService {
  const s = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  s.Credentials = new ews.WebCredentials(ALICE, 'secret');
  s.Url = new ews.Uri(url);
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Seen {
  readonly type: string;
  readonly itemId: string | undefined;
}

/** Opens a streaming connection for `subs` and records what ews-javascript-api reports. */
function open(svc: ews.ExchangeService, subs: ews.StreamingSubscription[]): {
  events: Seen[];
  subscriptionErrors: Array<{ id: string | undefined; message: string | undefined }>;
  disconnects: Array<string | undefined>;
} {
  const record = { events: [] as Seen[], subscriptionErrors: [] as Array<{ id: string | undefined; message: string | undefined }>, disconnects: [] as Array<string | undefined> };
  connection = new ews.StreamingSubscriptionConnection(svc, 30);
  for (const sub of subs) connection.AddSubscription(sub);
  connection.OnNotificationEvent.push((_sender, args) => {
    for (const e of args.Events) {
      record.events.push({ type: ews.EventType[e.EventType], itemId: e instanceof ews.ItemEvent ? e.ItemId.UniqueId : undefined });
    }
  });
  connection.OnSubscriptionError.push((_sender, args) => record.subscriptionErrors.push({ id: args.Subscription?.Id, message: args.Exception?.Message }));
  connection.OnDisconnect.push((_sender, args) => record.disconnects.push(args.Exception?.Message));
  connection.Open().catch((err: unknown) => record.disconnects.push(`Open failed: ${String(err)}`));
  return record;
}

describe('ews-javascript-api against the EwsSimulator', () => {
  it('streaming: subscribes, opens a connection and receives every delivered event', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const svc = service(sim.url);
    const sub = await svc.SubscribeToStreamingNotifications(
      [new ews.FolderId(ews.WellKnownFolderName.Inbox)],
      ews.EventType.NewMail,
      ews.EventType.Created,
      ews.EventType.Deleted,
      ews.EventType.Moved,
    );
    expect(sim.subscriptions.map((s) => s.id)).toEqual([sub.Id]);
    const seen = open(svc, [sub]);
    await until(() => sim!.subscriptions[0]!.connected, 'the connection');
    const delivered = [];
    for (const event of [{ type: 'NewMail' }, { type: 'Created' }, { type: 'Moved', from: 'inbox', to: 'deleteditems' }] as const) {
      delivered.push(sim.deliver(ALICE, event));
      await until(() => seen.events.length === delivered.length, `event ${delivered.length}`);
    }
    expect(seen.events).toEqual(delivered.map((d) => ({ type: d.type, itemId: d.itemId!.id })));
    expect(sim.requests.map((r) => r.operation)).toEqual(['Subscribe', 'GetStreamingEvents']);
  });

  it('pull: subscribes, GetEvents returns the delivered events and the watermark moves on', async () => {
    sim = await EwsSimulator.start();
    const svc = service(sim.url);
    const sub = await svc.SubscribeToPullNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], 5, null as unknown as string, ews.EventType.NewMail, ews.EventType.Modified);
    const startWatermark = sub.Watermark;
    expect(startWatermark).toBe(sim.subscriptions[0]!.watermark);
    const delivered = [sim.deliver(ALICE, { type: 'NewMail' }), sim.deliver(ALICE, { type: 'Modified' })];
    const results = await sub.GetEvents();
    expect(results.ItemEvents.map((e) => [ews.EventType[e.EventType], e.ItemId.UniqueId])).toEqual(delivered.map((d) => [d.type, d.itemId!.id]));
    expect(sub.Watermark).toBe(delivered[1]!.watermark);
    // Nothing new: a status event, which ews-javascript-api consumes without reporting an item event.
    const idle = await sub.GetEvents();
    expect(idle.ItemEvents).toHaveLength(0);
    await sub.Unsubscribe();
    expect(sim.subscriptions).toHaveLength(0);
    expect(sim.requests.map((r) => r.operation)).toEqual(['Subscribe', 'GetEvents', 'GetEvents', 'Unsubscribe']);
  });

  it('KNOWN DEFECT: of two envelopes in one HTTP chunk it reports only the first, the second waits for the next chunk', async () => {
    // Real servers (and proxies) may put several envelopes into one chunk. ews-javascript-api
    // reports the first and keeps the second unparsed until more bytes arrive; the event is late
    // by a whole chunk (possibly minutes of keep-alive interval), and the newest one is always
    // behind. Our own parser has no such lag (see the parser-chunking tests).
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const svc = service(sim.url);
    const sub = await svc.SubscribeToStreamingNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail, ews.EventType.Created);
    const seen = open(svc, [sub]);
    await until(() => sim!.subscriptions[0]!.connected, 'the connection');
    sim.inject({ type: 'coalesce-envelopes', count: 2 });
    const first = sim.deliver(ALICE, { type: 'NewMail' });
    await sleep(50); // a separate flush: two envelopes, written together in one chunk
    const second = sim.deliver(ALICE, { type: 'Created' });
    await until(() => seen.events.length >= 1, 'the first event');
    await sleep(300);
    expect(seen.events.map((e) => e.itemId)).toEqual([first.itemId!.id]); // the second is stuck
    const third = sim.deliver(ALICE, { type: 'NewMail' });
    await until(() => seen.events.length >= 2, 'the next chunk');
    await sleep(300);
    // The next chunk releases the stuck envelope, and its own event is now the one that lags.
    expect(seen.events.map((e) => e.itemId)).toEqual([first.itemId!.id, second.itemId!.id]);
    expect(seen.events.map((e) => e.itemId)).not.toContain(third.itemId!.id);
  });

  it('reports an in-stream ErrorSubscriptionNotFound (ErrorSubscriptionIds) as OnSubscriptionError, and Closed as OnDisconnect', async () => {
    // Exchange reports a subscription it lost with ErrorSubscriptionIds inside the stream; when it
    // was the connection's last one, the same message also says ConnectionStatus Closed.
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const svc = service(sim.url);
    const folders = [new ews.FolderId(ews.WellKnownFolderName.Inbox)];
    const a = await svc.SubscribeToStreamingNotifications(folders, ews.EventType.NewMail);
    const b = await svc.SubscribeToStreamingNotifications(folders, ews.EventType.NewMail);
    const seen = open(svc, [a, b]);
    await until(() => sim!.subscriptions.every((s) => s.connected), 'the connection');
    sim.inject({ type: 'forget-subscriptions', subscriptionIds: [a.Id] });
    await until(() => seen.subscriptionErrors.length >= 1, 'the error for a');
    expect(seen.subscriptionErrors).toEqual([{ id: a.Id, message: 'The specified subscription was not found.' }]);
    // b still works on the same connection.
    const event = sim.deliver(ALICE, { type: 'NewMail' });
    await until(() => seen.events.length >= 1, 'the event for b');
    expect(seen.events).toEqual([{ type: 'NewMail', itemId: event.itemId!.id }]);
    sim.inject({ type: 'forget-subscriptions', subscriptionIds: [b.Id] });
    await until(() => seen.disconnects.length >= 1, 'the disconnect');
    await sleep(100);
    expect(seen.subscriptionErrors.map((e) => e.id)).toEqual([a.Id, b.Id]);
    expect(seen.disconnects).toEqual([undefined]);
  });

  it('reconnects after ConnectionStatus Closed when the app reopens from OnDisconnect, losing nothing', async () => {
    sim = await EwsSimulator.start({ keepAliveIntervalMs: 60_000 });
    const svc = service(sim.url);
    const sub = await svc.SubscribeToStreamingNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail);
    const seen = open(svc, [sub]);
    connection!.OnDisconnect.push(() => {
      connection!.Open().catch((err: unknown) => seen.disconnects.push(`reopen failed: ${String(err)}`));
    });
    await until(() => sim!.subscriptions[0]!.connected, 'the connection');
    sim.forceClose();
    const event = sim.deliver(ALICE, { type: 'NewMail' }); // happens while no connection is open
    await until(() => seen.events.length >= 1, 'the event on the reopened connection');
    expect(seen.events).toEqual([{ type: 'NewMail', itemId: event.itemId!.id }]);
    expect(sim.requests.filter((r) => r.operation === 'GetStreamingEvents')).toHaveLength(2);
    connection!.OnDisconnect.length = 0;
  });
});
