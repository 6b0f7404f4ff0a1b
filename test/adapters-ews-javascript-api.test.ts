/**
 * The ews-javascript-api adapter against EwsSimulator: the ExchangeService's Url, credentials
 * (WebCredentials, OAuthCredentials), impersonation, headers and version reach EWS through the
 * bridge's own transport (never through ews-javascript-api's); callbacks get ews-javascript-api's
 * own ItemEvent/FolderEvent/ItemId/FolderId/DateTime objects; a Uri gets SendNotification POSTs;
 * a watermark resumes through the pull source; Unsubscribe() removes the EWS subscription.
 */
import {
  ConnectingIdType,
  DateTime,
  EventType,
  ExchangeService,
  ExchangeVersion,
  FolderEvent,
  FolderId,
  ImpersonatedUserId,
  ItemEvent,
  ItemId,
  OAuthCredentials,
  Uri,
  WebCredentials,
  WellKnownFolderName,
  type IXHRApi,
} from 'ews-javascript-api';
import { afterEach, describe, expect, it } from 'vitest';
import { pushBridge, type PushNotificationEventArgs } from '../adapters/ews-javascript-api.js';
import { EwsAuthError } from '../lib/errors.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { EwsSimulator, type DeliveredEvent } from '../lib/testing/index.js';
import { startCaptureListener } from './helpers/capture-listener.js';
import { until } from './helpers/until.js';

const USER = 'svc-crm@contoso.com';
const PASSWORD = 'Pa55-w0rd';
const MAILBOX = 'bob@contoso.com';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(options: Parameters<typeof EwsSimulator.start>[0] = {}): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, users: { [USER]: PASSWORD }, ...options });
  cleanups.push(() => sim.close());
  return sim;
}

/** An ExchangeService whose own HTTP client fails loudly if anything ever uses it. */
function service(sim: EwsSimulator, version = ExchangeVersion.Exchange2013_SP1): { service: ExchangeService; ownCalls: string[] } {
  const ownCalls: string[] = [];
  const s = new ExchangeService(version);
  s.Url = new Uri(sim.url);
  s.Credentials = new WebCredentials(USER, PASSWORD);
  const refuse = (what: string) => () => {
    ownCalls.push(what);
    return Promise.reject(new Error(`ews-javascript-api's own ${what} must not be used`));
  };
  s.XHRApi = { xhr: refuse('xhr'), xhrStream: refuse('xhrStream'), disconnect: () => void ownCalls.push('disconnect'), type: 'refusing', apiName: 'refusing' } as unknown as IXHRApi;
  return { service: s, ownCalls };
}

describe('ews-javascript-api adapter: callback form', () => {
  it('subscribes as the ExchangeService says and hands over its own event objects', async () => {
    const sim = await simulator();
    const { service: svc, ownCalls } = service(sim);
    svc.ImpersonatedUserId = new ImpersonatedUserId(ConnectingIdType.SmtpAddress, MAILBOX);
    svc.HttpHeaders.Add('X-Crm-Tenant', 'contoso-emea');
    const calls: PushNotificationEventArgs[] = [];
    const subscription = await pushBridge(svc).SubscribeToPushNotificationsOnAllFolders(
      (args) => {
        calls.push(args);
        return 'OK';
      },
      5,
      null,
      EventType.NewMail,
      EventType.Moved,
      EventType.Modified,
      EventType.Created,
    );
    cleanups.push(() => subscription.Unsubscribe());

    // What reached EWS.
    expect(sim.subscriptions).toHaveLength(1);
    expect(subscription.Id).toBe(sim.subscriptions[0]!.id);
    expect(subscription.Service).toBe(svc);
    const subscribe = sim.requests.find((r) => r.operation === 'Subscribe')!;
    expect(subscribe.user).toBe(USER);
    expect(subscribe.mailbox).toBe(MAILBOX);
    expect(subscribe.headers['x-crm-tenant']).toBe('contoso-emea');
    expect(subscribe.request).toMatchObject({ kind: 'streaming', subscribeToAllFolders: true, eventTypes: ['NewMail', 'Moved', 'Modified', 'Created'] });
    expect(subscribe.request?.header).toEqual({ serverVersion: 'Exchange2013_SP1', impersonation: { by: 'SmtpAddress', value: MAILBOX } });

    await until(() => sim.subscriptions[0]?.connected === true, 'the streaming connection');
    const delivered: DeliveredEvent[] = [
      sim.deliver(MAILBOX, { type: 'NewMail' }),
      sim.deliver(MAILBOX, { type: 'Moved', from: 'inbox', to: 'archive' }),
      sim.deliver(MAILBOX, { type: 'Modified', on: 'folder', folder: 'inbox', unreadCount: 7 }),
    ];
    await until(() => calls.flatMap((c) => c.Events).length >= 3, 'three events');
    const events = calls.flatMap((c) => c.Events);

    const [newMail, moved, modified] = events as [ItemEvent, ItemEvent, FolderEvent];
    const [d0, d1, d2] = delivered as [DeliveredEvent, DeliveredEvent, DeliveredEvent];
    expect(newMail).toBeInstanceOf(ItemEvent);
    expect(newMail.EventType).toBe(EventType.NewMail);
    expect(newMail.ItemId).toBeInstanceOf(ItemId);
    expect([newMail.ItemId.UniqueId, newMail.ItemId.ChangeKey]).toEqual([d0.itemId?.id, d0.itemId?.changeKey]);
    expect(newMail.ParentFolderId).toBeInstanceOf(FolderId);
    expect(newMail.ParentFolderId.UniqueId).toBe(d0.parentFolderId.id);
    expect(newMail.TimeStamp).toBeInstanceOf(DateTime);
    expect(newMail.TimeStamp.TotalMilliSeconds).toBe(Date.parse(d0.timeStamp));

    expect(moved).toBeInstanceOf(ItemEvent);
    expect(moved.EventType).toBe(EventType.Moved);
    expect(moved.ItemId.UniqueId).toBe(d1.itemId?.id);
    expect(d1.type === 'Moved' && moved.OldItemId.UniqueId === d1.oldItemId?.id).toBe(true);
    expect(d1.type === 'Moved' && moved.OldParentFolderId.UniqueId === d1.oldParentFolderId.id).toBe(true);

    expect(modified).toBeInstanceOf(FolderEvent);
    expect(modified.EventType).toBe(EventType.Modified);
    expect(modified.FolderId.UniqueId).toBe(d2.folderId?.id);
    expect(modified.UnreadCount).toBe(7);

    const first = calls.find((c) => c.Events.length > 0)!;
    expect(first).toMatchObject({ Subscription: subscription, SubscriptionId: subscription.Id, PreviousWatermark: null, NewWatermark: null, IsStatusEvent: false, Attempt: 1 });
    expect(first.ItemEvents.every((e) => e instanceof ItemEvent)).toBe(true);
    expect(calls.flatMap((c) => c.FolderEvents)).toEqual([modified]);

    await subscription.Unsubscribe();
    await expect(subscription.done).resolves.toEqual({ reason: 'closed' });
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'EWS Unsubscribe');
    expect(ownCalls).toEqual([]);
  });

  it("OAuthCredentials become a Bearer token; a callback's 'Unsubscribe' ends the subscription", async () => {
    const token = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.c2ln';
    const sim = await simulator({ verifyToken: (t) => (t === token ? MAILBOX : false) });
    const { service: svc } = service(sim);
    svc.Credentials = new OAuthCredentials(token);
    const subscription = await pushBridge(svc).SubscribeToPushNotifications(
      [new FolderId(WellKnownFolderName.Inbox)],
      (args) => (args.Events.length > 0 ? 'Unsubscribe' : 'OK'),
      1,
      null,
      EventType.NewMail,
    );
    const subscribe = sim.requests.find((r) => r.operation === 'Subscribe')!;
    expect(subscribe.user).toBe(MAILBOX);
    expect(subscribe.headers.authorization).toBe('Bearer [redacted]');
    expect(subscribe.request).toMatchObject({ folders: [{ distinguished: 'inbox' }] });
    await until(() => sim.subscriptions[0]?.connected === true, 'the streaming connection');
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await expect(subscription.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId: subscription.Id });
    await until(() => sim.subscriptions.length === 0, 'the subscription removed');
  });

  it('a watermark resumes through the pull source: events after it are delivered, with watermarks', async () => {
    const sim = await simulator();
    const { service: svc } = service(sim);
    svc.ImpersonatedUserId = new ImpersonatedUserId(ConnectingIdType.SmtpAddress, MAILBOX);
    const before = sim.deliver(MAILBOX, { type: 'NewMail' });
    const missed = [sim.deliver(MAILBOX, { type: 'NewMail' }), sim.deliver(MAILBOX, { type: 'Created' })];
    const got: string[] = [];
    const subscription = await pushBridge(svc, { sourceOptions: { pollIntervalMs: 20 } }).SubscribeToPushNotifications(
      [new FolderId(WellKnownFolderName.Inbox)],
      (args) => {
        for (const e of args.ItemEvents) got.push(e.ItemId.UniqueId);
        return 'OK';
      },
      30,
      before.watermark,
      EventType.NewMail,
      EventType.Created,
    );
    cleanups.push(() => subscription.Unsubscribe());
    expect(sim.requests.find((r) => r.operation === 'Subscribe')?.request).toMatchObject({ kind: 'pull', watermark: before.watermark });
    await until(() => got.length >= 2, 'the two events after the watermark');
    expect(got).toEqual(missed.map((d) => d.itemId?.id));
    await until(() => subscription.Watermark === missed[1]!.watermark, 'Watermark moved to the last answered event');
  });
});

describe('ews-javascript-api adapter: Uri form', () => {
  it('POSTs SendNotifications to the listener Uri (with the configured shared secret) and honours its answers', async () => {
    const sim = await simulator();
    const { service: svc } = service(sim);
    const listener = await startCaptureListener({ answer: (post) => (post.body.includes('NewMailEvent') ? 'Unsubscribe' : 'OK') });
    cleanups.push(() => listener.close());
    const subscription = await pushBridge(svc, { listener: { sharedSecret: { headerName: 'X-Bridge-Secret', value: 'abc123' } } }).SubscribeToPushNotifications(
      [new FolderId(WellKnownFolderName.Inbox)],
      new Uri(listener.url),
      1,
      null,
      'caller data (ignored)',
      EventType.NewMail,
    );
    await until(() => sim.subscriptions[0]?.connected === true, 'the streaming connection');
    sim.deliver(USER, { type: 'NewMail' });
    await expect(subscription.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId: subscription.Id });
    const post = listener.posts[0]!;
    expect(post.headers['x-bridge-secret']).toBe('abc123');
    expect(post.headers.authorization).toBeUndefined();
    expect(post.body).toContain('Version="Exchange2013_SP1"');
    const envelope = parseEnvelope(post.body);
    expect(envelope.body.type === 'response' && envelope.body.messages[0]?.kind).toBe('SendNotification');
    expect(listener.rawText()).not.toContain(PASSWORD);
  });
});

describe('ews-javascript-api adapter: errors', () => {
  it('rejects with a clear error for bad arguments and unusable service settings', async () => {
    const sim = await simulator();
    const inbox = [new FolderId(WellKnownFolderName.Inbox)];
    const ok = () => 'OK' as const;
    const bridge = (svc: ExchangeService) => pushBridge(svc).SubscribeToPushNotifications(inbox, ok, 30, null, EventType.NewMail);

    await expect(pushBridge(service(sim).service).SubscribeToPushNotifications(inbox, ok, 0, null, EventType.NewMail)).rejects.toThrow(
      new RangeError('frequency must be 1–1440 minutes (got 0)'),
    );
    await expect(pushBridge(service(sim).service).SubscribeToPushNotifications(inbox, ok, 30, null)).rejects.toThrow(/eventTypes must name at least one EventType/);
    await expect(pushBridge(service(sim).service).SubscribeToPushNotifications(inbox, ok, 30, null, EventType.Status)).rejects.toThrow(/other than Status/);
    await expect(pushBridge(service(sim).service).SubscribeToPushNotifications([], ok, 30, null, EventType.NewMail)).rejects.toThrow(/^folderIds must be a non-empty array of FolderId \(got an empty array\)$/);
    await expect(pushBridge(service(sim).service).SubscribeToPushNotifications(inbox, 42 as never, 30, null, EventType.NewMail)).rejects.toThrow(/url must be a Uri/);
    await expect(pushBridge(service(sim).service, { source: 'streaming' }).SubscribeToPushNotifications(inbox, ok, 30, 'AAAA', EventType.NewMail)).rejects.toThrow(
      /a watermark needs source 'pull' or 'hybrid'/,
    );

    const noUrl = new ExchangeService(ExchangeVersion.Exchange2013);
    await expect(bridge(noUrl)).rejects.toThrow(/^service\.Url must be set \(.*\) \(got undefined\)$/);
    const old = service(sim, ExchangeVersion.Exchange2010).service;
    await expect(bridge(old)).rejects.toThrow(/RequestedServerVersion must be Exchange2010_SP1 or later/);
    const byName = service(sim).service;
    byName.ImpersonatedUserId = new ImpersonatedUserId(ConnectingIdType.PrincipalName, 'bob');
    await expect(bridge(byName)).rejects.toThrow(/^service\.ImpersonatedUserId must use ConnectingIdType\.SmtpAddress .* \(got ConnectingIdType\.PrincipalName\)$/);

    const wrong = service(sim).service;
    wrong.Credentials = new WebCredentials(USER, 'wrong password');
    const error = await bridge(wrong).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect(String((error as Error).message)).not.toContain('wrong password');
    expect(sim.subscriptions).toHaveLength(0);
  });
});
