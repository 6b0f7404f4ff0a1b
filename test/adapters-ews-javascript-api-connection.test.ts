/**
 * The drop-in StreamingSubscriptionConnection, ExchangeService and PullSubscription against
 * EwsSimulator, one behaviour at a time: what ews-javascript-api apps rely on (its own objects,
 * OnDisconnect when the server ends the stream, Open() again being harmless) and where the bridge
 * differs on purpose (events wait for Open(), nothing throws that used to work, OnGap, GetEvents()
 * batches checkpointed when the next is asked for).
 */
import {
  ExchangeService as EjsExchangeService,
  EventType,
  ExchangeVersion,
  FolderEvent,
  FolderId,
  GetEventsResults,
  ItemEvent,
  NotificationEventArgs,
  PullSubscription,
  ServiceLocalException,
  StreamingSubscription,
  SubscriptionErrorEventArgs,
  Uri,
  WebCredentials,
  WellKnownFolderName,
} from 'ews-javascript-api';
import { afterEach, describe, expect, it } from 'vitest';
import { ExchangeService, StreamingSubscriptionConnection, notificationBridge } from '../adapters/ews-javascript-api.js';
import { MemoryCheckpointStore, type Logger } from '../lib/index.js';
import { decodeChangeKey } from '../lib/testing/ids.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const INBOX = (): FolderId[] => [new FolderId(WellKnownFolderName.Inbox)];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(timeScale = 0.001): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale, keepAliveIntervalMs: 100 });
  cleanups.push(() => sim.close());
  return sim;
}

function serviceFor(sim: EwsSimulator): ExchangeService {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(MAILBOX, 'secret');
  service.Url = new Uri(sim.url);
  service.bridgeOptions = { streaming: { retry: { minDelayMs: 20, maxDelayMs: 200 } }, pull: { pollIntervalMs: 20, retry: { minDelayMs: 20, maxDelayMs: 200 } } };
  return service;
}

const seqOf = (event: ItemEvent | FolderEvent): number | undefined =>
  decodeChangeKey(event instanceof ItemEvent ? event.ItemId.ChangeKey : event.FolderId.ChangeKey);

function record(connection: StreamingSubscriptionConnection): { seqs: number[]; args: NotificationEventArgs[]; disconnects: SubscriptionErrorEventArgs[]; errors: SubscriptionErrorEventArgs[] } {
  const log = { seqs: [] as number[], args: [] as NotificationEventArgs[], disconnects: [] as SubscriptionErrorEventArgs[], errors: [] as SubscriptionErrorEventArgs[] };
  connection.OnNotificationEvent.push((_sender, args) => {
    log.args.push(args);
    for (const event of args.Events) log.seqs.push(seqOf(event as ItemEvent | FolderEvent) ?? -1);
  });
  connection.OnDisconnect.push((_sender, args) => log.disconnects.push(args));
  connection.OnSubscriptionError.push((_sender, args) => log.errors.push(args));
  return log;
}

describe('drop-in ExchangeService', () => {
  it("is ews-javascript-api's own (instanceof, its other members) and can be subclassed", () => {
    const service = new ExchangeService(ExchangeVersion.Exchange2016);
    expect(service).toBeInstanceOf(EjsExchangeService);
    expect(service).toBeInstanceOf(ExchangeService);
    expect(service.RequestedServerVersion).toBe(ExchangeVersion.Exchange2016);
    expect(typeof service.FindItems).toBe('function');
    class MyService extends ExchangeService {}
    expect(new MyService()).toBeInstanceOf(EjsExchangeService);
    expect(() => (ExchangeService as unknown as () => void)()).toThrow(/without 'new'/);
  });
});

describe('StreamingSubscriptionConnection', () => {
  it("hands ews-javascript-api's own objects to the delegates; events made before Open() wait for it, in order", async () => {
    const sim = await simulator();
    const service = serviceFor(sim);
    const subscription = await service.SubscribeToStreamingNotifications(INBOX(), EventType.NewMail, EventType.Modified);
    expect(subscription).toBeInstanceOf(StreamingSubscription);
    expect(subscription.Id).toBe(sim.subscriptions[0]?.id);
    await until(() => sim.subscriptions[0]?.connected === true, 'the stream');
    const early = [sim.deliver(MAILBOX, { type: 'NewMail' }).seq, sim.deliver(MAILBOX, { type: 'Modified', on: 'folder', folder: 'inbox', unreadCount: 3 }).seq];

    const connection = new StreamingSubscriptionConnection(service, 30);
    const log = record(connection);
    connection.AddSubscription(subscription);
    expect(connection.IsOpen).toBe(false);
    // They reached the bridge before the app opened its connection: held, not lost.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(log.seqs).toEqual([]);
    await connection.Open();
    expect(log.seqs).toEqual(early);
    const [args] = log.args;
    expect(args).toBeInstanceOf(NotificationEventArgs);
    expect(args!.Subscription).toBe(subscription);
    expect(log.args.flatMap((a) => a.Events).map((e) => e.constructor)).toEqual([ItemEvent, FolderEvent]);
    expect((log.args.flatMap((a) => a.Events)[1] as FolderEvent).UnreadCount).toBe(3);

    const later = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
    await until(() => log.seqs.length === 3, 'the event after Open()');
    expect(log.seqs).toEqual([...early, later]);
    expect(connection.CurrentSubscriptions).toEqual([subscription]);
    connection.Close();
    await subscription.Unsubscribe();
    await until(() => sim.subscriptions.length === 0, 'EWS Unsubscribe');
  });

  it('fires OnDisconnect when the server ends the stream, stays open (Open() again is harmless), and Close() fires it too', async () => {
    const sim = await simulator();
    const service = serviceFor(sim);
    const subscription = await service.SubscribeToStreamingNotifications(INBOX(), EventType.NewMail);
    const connection = new StreamingSubscriptionConnection(service, 30);
    const log = record(connection);
    let isOpenInHandler: boolean | undefined;
    connection.OnDisconnect.push((sender: StreamingSubscriptionConnection) => {
      isOpenInHandler = sender.IsOpen;
      void sender.Open(); // what the samples do; no throw, no second stream
    });
    connection.AddSubscription(subscription);
    await connection.Open();
    await connection.Open();
    await until(() => sim.subscriptions[0]?.connected === true, 'the stream');
    const streams = sim.requests.filter((r) => r.operation === 'GetStreamingEvents').length;
    sim.forceClose();
    await until(() => log.disconnects.length === 1, 'OnDisconnect');
    expect(log.disconnects[0]).toBeInstanceOf(SubscriptionErrorEventArgs);
    expect(log.disconnects[0]!.Exception).toBeNull();
    expect(log.disconnects[0]!.Subscription).toBeNull();
    expect(isOpenInHandler).toBe(true);
    await until(() => sim.subscriptions[0]?.connected === true, 'the bridge reopening by itself');
    const seq = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
    await until(() => log.seqs.length === 1, 'the event after the reopen');
    expect(log.seqs).toEqual([seq]);
    expect(sim.requests.filter((r) => r.operation === 'GetStreamingEvents').length).toBe(streams + 1);

    // Closed: events wait; Close() again is harmless; reopening hands them over.
    connection.OnDisconnect.splice(1);
    connection.Close();
    connection.Close();
    expect(log.disconnects).toHaveLength(2);
    expect(connection.IsOpen).toBe(false);
    const waiting = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(log.seqs).toEqual([seq]);
    await connection.Open();
    await until(() => log.seqs.length === 2, 'the event made while closed');
    expect(log.seqs).toEqual([seq, waiting]);
    expect(log.errors).toEqual([]);
    connection.Close();
    await subscription.Unsubscribe();
  });

  it('keeps delivering when a delegate throws or rejects (logged), and accepts subscriptions while open', async () => {
    const sim = await simulator();
    const service = serviceFor(sim);
    const logged: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (message) => void logged.push(message) };
    service.bridgeOptions = { streaming: { logger } };
    const first = await service.SubscribeToStreamingNotifications(INBOX(), EventType.NewMail);
    const connection = new StreamingSubscriptionConnection(service, 30);
    connection.OnNotificationEvent.push(() => {
      throw new Error('handler bug');
    });
    connection.OnNotificationEvent.push(() => Promise.reject(new Error('async handler bug')) as unknown as void);
    const log = record(connection);
    connection.AddSubscription(first);
    await connection.Open();
    const second = await service.SubscribeToStreamingNotificationsOnAllFolders(EventType.Created);
    connection.AddSubscription(second);
    await until(() => sim.subscriptions.length === 2 && sim.subscriptions.every((s) => s.connected), 'both subscriptions on the stream');
    // One GetStreamingEvents carries both (the service's StreamingGroup).
    expect(sim.openStreamingConnections).toBe(1);
    const made = [sim.deliver(MAILBOX, { type: 'NewMail' }).seq, sim.deliver(MAILBOX, { type: 'Created', folder: 'drafts' }).seq];
    await until(() => log.seqs.length === 2, 'both events');
    expect(log.seqs.sort((a, b) => a - b)).toEqual(made);
    await until(() => logged.filter((m) => m.includes('OnNotificationEvent')).length >= 4, 'the failures logged');
    connection.RemoveSubscription(second);
    expect(connection.CurrentSubscriptions).toEqual([first]);
    connection.Close();
    // Each Unsubscribe() resolves once Exchange answered it, the first while the second still
    // holds the shared stream open.
    const firstId = first.Id;
    await first.Unsubscribe();
    expect(sim.subscriptions.map((s) => s.id)).not.toContain(firstId);
    await second.Unsubscribe();
    expect(sim.subscriptions).toEqual([]);
  });

  it('refuses what it cannot do, clearly: a foreign subscription, no subscription, a bad lifetime', async () => {
    const sim = await simulator();
    const plain = new EjsExchangeService(ExchangeVersion.Exchange2013);
    plain.Url = new Uri(sim.url);
    plain.Credentials = new WebCredentials(MAILBOX, 'secret');
    const foreign = new (StreamingSubscription as unknown as new (s: EjsExchangeService) => StreamingSubscription)(plain);
    const connection = new StreamingSubscriptionConnection(plain, 10);
    expect(() => connection.AddSubscription(foreign)).toThrow(/was not made by ews-push-bridge/);
    expect(() => connection.Open()).toThrow(ServiceLocalException);
    expect(() => new StreamingSubscriptionConnection(plain, 0)).toThrow(new RangeError('lifetime must be 1–30 minutes (got 0)'));
    expect(() => new StreamingSubscriptionConnection(plain, 31)).toThrow(RangeError);
    connection.Dispose();
    expect(() => connection.IsOpen).toThrow(/ObjectDisposedException/);
    // A plain ews-javascript-api service works through notificationBridge(service).
    const subscription = await notificationBridge(plain).SubscribeToStreamingNotifications(INBOX(), EventType.NewMail);
    const other = new StreamingSubscriptionConnection(plain, [subscription], 5);
    expect(other.CurrentSubscriptions).toEqual([subscription]);
    await subscription.Unsubscribe();
  });

  it("uses the lifetime of a connection made before the service's first subscription as the ConnectionTimeout", async () => {
    const sim = await simulator();
    const service = serviceFor(sim);
    const connection = new StreamingSubscriptionConnection(service, 7);
    const subscription = await service.SubscribeToStreamingNotifications(INBOX(), EventType.NewMail);
    connection.AddSubscription(subscription);
    await connection.Open();
    await until(() => sim.requests.some((r) => r.operation === 'GetStreamingEvents'), 'the stream');
    const request = sim.requests.find((r) => r.operation === 'GetStreamingEvents')!.request;
    expect(request).toMatchObject({ connectionTimeoutMinutes: 7 });
    connection.Close();
    await subscription.Unsubscribe();
  });

  it('reports a lost subscription it replaced to OnGap (not OnSubscriptionError), and keeps the subscription object', async () => {
    const sim = await simulator();
    const service = serviceFor(sim);
    const subscription = await service.SubscribeToStreamingNotifications(INBOX(), EventType.NewMail);
    const connection = new StreamingSubscriptionConnection(service, 30);
    const log = record(connection);
    const gaps: unknown[] = [];
    connection.OnGap.push((_sender, args) => {
      expect(args.Subscription).toBe(subscription);
      gaps.push(args.Gap);
    });
    connection.AddSubscription(subscription);
    await connection.Open();
    await until(() => sim.subscriptions[0]?.connected === true, 'the stream');
    const firstId = subscription.Id;
    sim.inject({ type: 'forget-subscriptions' });
    await until(() => gaps.length === 1 && sim.subscriptions[0]?.connected === true, 'the replacement');
    expect(subscription.Id).not.toBe(firstId);
    expect(subscription.Id).toBe(sim.subscriptions[0]!.id);
    expect(gaps[0]).toMatchObject({ reason: 'subscription-lost', eventsMayBeLost: true, subscriptionKept: false });
    const seq = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
    await until(() => log.seqs.length === 1, 'the event on the new subscription');
    expect(log.seqs).toEqual([seq]);
    expect(log.errors).toEqual([]);
    connection.Close();
    await subscription.Unsubscribe();
  });
});

describe('PullSubscription on the bridge', () => {
  it("GetEvents() returns ews-javascript-api's GetEventsResults in wire order, batch by batch, and checkpoints a batch when the next is asked for", async () => {
    const sim = await simulator(0.01);
    const service = serviceFor(sim);
    const checkpoint = new MemoryCheckpointStore();
    service.bridgeOptions = { pull: { pollIntervalMs: 20, checkpoint, checkpointKey: 'crm' } };
    const subscription = await service.SubscribeToPullNotifications(INBOX(), 5, null as unknown as string, EventType.NewMail, EventType.Modified);
    expect(subscription).toBeInstanceOf(PullSubscription);
    expect(subscription.Id).toBe(sim.subscriptions[0]?.id);
    // 55 events: more than one GetEvents answer (at most 50).
    const made: number[] = [];
    for (let i = 0; i < 54; i++) made.push(sim.deliver(MAILBOX, { type: 'NewMail' }).seq);
    made.push(sim.deliver(MAILBOX, { type: 'Modified', on: 'folder', folder: 'inbox', unreadCount: 54 }).seq);

    const got: number[] = [];
    let first: GetEventsResults | undefined;
    while (got.length < made.length) {
      const results = await subscription.GetEvents();
      expect(results).toBeInstanceOf(GetEventsResults);
      if (results.AllEvents.length > 0 && first === undefined) {
        first = results;
        expect(results.AllEvents).toHaveLength(50);
        expect(subscription.MoreEventsAvailable).toBe(true);
      }
      for (const event of results.AllEvents) got.push(seqOf(event as ItemEvent | FolderEvent) ?? -1);
      expect(subscription.Watermark).toBe((results as unknown as { NewWatermark: string }).NewWatermark); // @internal in its typings
      if (results.AllEvents.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(got).toEqual(made);
    expect(first!.ItemEvents).toHaveLength(50);
    expect(subscription.MoreEventsAvailable).toBe(false);
    // The last batch is checkpointed when the app is done with it: at the next GetEvents() or Unsubscribe().
    await subscription.Unsubscribe();
    expect((await checkpoint.get('crm'))?.watermark).toBe(subscription.Watermark);
    // Resolved once EWS answered the Unsubscribe, as ews-javascript-api's own does.
    expect(sim.requests.filter((r) => r.operation === 'Unsubscribe').map((r) => r.status)).toEqual([200]);
    expect(sim.subscriptions).toEqual([]);

    // A new subscription with the same store resumes there: nothing again, then what is new.
    const resumed = await service.SubscribeToPullNotifications(INBOX(), 5, null as unknown as string, EventType.NewMail, EventType.Modified);
    const next = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
    const again: number[] = [];
    while (again.length === 0) {
      const results = await resumed.GetEvents();
      for (const event of results.ItemEvents) again.push(seqOf(event) ?? -1);
      if (again.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(again).toEqual([next]);
    await resumed.Unsubscribe();
  });
});
