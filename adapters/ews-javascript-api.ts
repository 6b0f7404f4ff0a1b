/**
 * `ews-push-bridge/adapters/ews-javascript-api`: for Node code written against
 * [ews-javascript-api](https://github.com/gautamsi/ews-javascript-api). Takes the app's
 * `ExchangeService` as configuration and the arguments of its `SubscribeToPushNotifications`, so a
 * call site changes by one line:
 *
 * ```ts
 * // before: Exchange pushes (authenticated push is gone since the 2019 security update)
 * const sub = await service.SubscribeToPushNotifications(folders, new Uri(listenerUrl), 5, null, EventType.NewMail);
 * // after: the bridge holds a streaming subscription and POSTs the same SendNotifications to the same listener
 * const sub = await pushBridge(service).SubscribeToPushNotifications(folders, new Uri(listenerUrl), 5, null, EventType.NewMail);
 * // or, without the HTTP listener: a callback that gets ews-javascript-api's ItemEvent / FolderEvent objects
 * const sub = await pushBridge(service).SubscribeToPushNotifications(folders, (args) => { …; return 'OK'; }, 5, null, EventType.NewMail);
 * ```
 *
 * What is read from the service: `Url`; `Credentials` — `WebCredentials(user, password)` as Basic
 * (a `DOMAIN\\user` name is sent as given), `OAuthCredentials(token)` as Bearer;
 * `ImpersonatedUserId` (by SMTP address); `HttpHeaders`; `RequestedServerVersion`. It does not use
 * ews-javascript-api's own connections (neither its HTTP client nor its streaming connection):
 * the subscription is held by this library's streaming (default) or pull/hybrid source.
 *
 * Apps that already stream or pull with ews-javascript-api import `ExchangeService` and
 * `StreamingSubscriptionConnection` from here instead (one changed line): the drop-ins keep its
 * API and objects, held by the bridge's StreamingGroup and pull source (see
 * docs/migrate-ews-javascript-api.md). `notificationBridge(service)` does the same for a service
 * the app cannot swap.
 *
 * ews-javascript-api is an optional peer dependency: this module imports only its types
 * statically and loads it when a subscription (or a drop-in ExchangeService) is made, so nothing else in the package needs it.
 *
 * @packageDocumentation
 */
import type { EventType, ExchangeService, FolderEvent, FolderId, ItemEvent, NotificationEvent, Uri } from 'ews-javascript-api';
import {
  hybridSignals,
  pullSignals,
  streamingSignals,
  type HybridOptions,
  type PushNotification,
  type SourceLifecycleEvent,
  type SourceSignal,
  type StreamingOptions,
  type SubscriptionStatus,
} from '../lib/index.js';
import { endpointOptionsOf, serviceEndpoint, watchedOf, type EjsModule } from './internal/ejs-config.js';
import { toEjsEvents } from './internal/ejs-events.js';
import { describeKind, describeValue } from '../lib/validate.js';
import { isStatusOnly, type PushSource } from './internal/source-input.js';
import { lastWatermark } from '../lib/model.js';
import { pushCallback, type DeliveryContext, type PushCallbackEnd, type PushCallbackHandle, type PushCallbackOptions, type PushHandler } from './push-callback.js';
import { createListenerPoster, type ListenerPosterOptions } from './soap-forwarder.js';

/** What a push callback receives: ews-javascript-api's shapes, plus the push fields. */
export interface PushNotificationEventArgs {
  /** The subscription, as `SubscribeToPushNotifications` returned it. */
  readonly Subscription: BridgedPushSubscription;
  /**
   * The item and folder events, in wire order, as ews-javascript-api's `ItemEvent` / `FolderEvent`
   * (like `GetEventsResults.AllEvents`: StatusEvents have no object; see {@link IsStatusEvent}).
   */
  readonly Events: NotificationEvent[];
  /** The `ItemEvent`s of {@link Events}. */
  readonly ItemEvents: ItemEvent[];
  /** The `FolderEvent`s of {@link Events}. */
  readonly FolderEvents: FolderEvent[];
  /** `true` for a keep-alive: the notification carried only a StatusEvent. */
  readonly IsStatusEvent: boolean;
  readonly SubscriptionId: string;
  /** The watermark the events follow (pull/hybrid); `null` with streaming. */
  readonly PreviousWatermark: string | null;
  /** The watermark after the last event (pull/hybrid); `null` with streaming. */
  readonly NewWatermark: string | null;
  /** Whether the server has more events queued. */
  readonly MoreEventsAvailable: boolean;
  /** 1 for the first call with this notification, 2 for the first retry, …. */
  readonly Attempt: number;
  /** The bridge's own notification object. */
  readonly Notification: PushNotification;
}

/**
 * The push listener as a function: answer `'OK'` to keep the subscription, `'Unsubscribe'` to end
 * it; throwing or rejecting is a failed post, retried on Exchange's schedule.
 */
export type PushNotificationCallback = (args: PushNotificationEventArgs) => SubscriptionStatus | PromiseLike<SubscriptionStatus>;

/** The subscription `SubscribeToPushNotifications` resolves with (the members of ews-javascript-api's `PushSubscription`, and a way to end it). */
export interface BridgedPushSubscription {
  /** The EWS subscription id. It changes when the bridge had to replace a subscription the server lost. */
  readonly Id: string;
  /** The watermark after the last notification answered (pull/hybrid); `null` with streaming or before the first. */
  readonly Watermark: string | null;
  /** The service it was made from. */
  readonly Service: ExchangeService;
  /** Ends the subscription gracefully (removes it from Exchange). Resolves when done; never rejects. */
  Unsubscribe(): Promise<void>;
  /** Settles when the subscription has ended: see push-callback's `done`. */
  readonly done: Promise<PushCallbackEnd>;
}

/** Which source holds the subscription. */
export type BridgeSourceKind = 'streaming' | 'pull' | 'hybrid';

/** Options that the service and the Subscribe arguments decide, so cannot be set again. */
type DecidedBySubscribe = 'url' | 'auth' | 'mailbox' | 'folders' | 'subscribeToAllFolders' | 'eventTypes' | 'requestServerVersion' | 'headers' | 'watermark' | 'signal' | 'onLifecycle';

/** Options of {@link pushBridge}. */
export interface PushBridgeOptions extends Omit<PushCallbackOptions, 'statusFrequencyMinutes'> {
  /**
   * Which source holds the subscription: `'streaming'` (lowest latency; no watermarks), `'pull'`
   * (watermarks, resumable) or `'hybrid'` (both). Default `'streaming'`, or `'pull'` when
   * `SubscribeToPushNotifications` is given a watermark (a streaming subscription cannot resume from one).
   */
  readonly source?: BridgeSourceKind;
  /**
   * More source options (checkpoint store, retry, poll interval, connection timeout, logger …).
   * Everything the `ExchangeService` and the Subscribe arguments decide comes from them. Default: none.
   */
  readonly sourceOptions?: Omit<HybridOptions & StreamingOptions, DecidedBySubscribe>;
  /** How to reach a listener given as a `Uri` (shared secret, mTLS, timeout). Default: none. */
  readonly listener?: Omit<ListenerPosterOptions, 'url' | 'requestServerVersion'>;
}

/** `SubscribeToPushNotifications` and `…OnAllFolders`, with ews-javascript-api's argument lists. */
export interface PushBridge {
  /**
   * As `ExchangeService.SubscribeToPushNotifications(folderIds, url, frequency, watermark, ...eventTypes)`:
   * resolves once the EWS subscription exists. `url` is the legacy listener (`Uri` or string: the
   * bridge POSTs `SendNotification`s to it) or a {@link PushNotificationCallback}. `frequency` is
   * the StatusFrequency in minutes (1–1440). A non-empty `watermark` resumes from it (pull/hybrid).
   */
  SubscribeToPushNotifications(
    folderIds: FolderId[],
    url: Uri | string | PushNotificationCallback,
    frequency: number,
    watermark: string | null | undefined,
    ...eventTypes: EventType[]
  ): Promise<BridgedPushSubscription>;
  /** The overload with `callerData` (Exchange 2013+): accepted for compatibility, not used. */
  SubscribeToPushNotifications(
    folderIds: FolderId[],
    url: Uri | string | PushNotificationCallback,
    frequency: number,
    watermark: string | null | undefined,
    callerData: string,
    ...eventTypes: EventType[]
  ): Promise<BridgedPushSubscription>;
  /** As `ExchangeService.SubscribeToPushNotificationsOnAllFolders(url, frequency, watermark, ...eventTypes)`. */
  SubscribeToPushNotificationsOnAllFolders(
    url: Uri | string | PushNotificationCallback,
    frequency: number,
    watermark: string | null | undefined,
    ...eventTypes: EventType[]
  ): Promise<BridgedPushSubscription>;
  /** The overload with `callerData`: accepted for compatibility, not used. */
  SubscribeToPushNotificationsOnAllFolders(
    url: Uri | string | PushNotificationCallback,
    frequency: number,
    watermark: string | null | undefined,
    callerData: string,
    ...eventTypes: EventType[]
  ): Promise<BridgedPushSubscription>;
}

class Subscription implements BridgedPushSubscription {
  Id = '';
  Watermark: string | null = null;
  constructor(
    readonly Service: ExchangeService,
    private readonly handle: () => PushCallbackHandle,
  ) {}
  get done(): Promise<PushCallbackEnd> {
    return this.handle().done;
  }
  Unsubscribe(): Promise<void> {
    return this.handle().close();
  }
}

let ejsModule: Promise<EjsModule> | undefined;

/** Loads ews-javascript-api on first use (it is an optional peer dependency). */
function loadEjs(): Promise<EjsModule> {
  ejsModule ??= import('ews-javascript-api').then(
    (m) => m,
    (error: unknown) => {
      ejsModule = undefined;
      throw new Error("The ews-javascript-api adapter needs the 'ews-javascript-api' package: npm install ews-javascript-api", { cause: error });
    },
  );
  return ejsModule;
}

function isUri(value: unknown): value is Uri {
  return typeof value === 'object' && value !== null && typeof (value as Uri).AbsoluteUri === 'string';
}

/** Splits `[callerData?, ...eventTypes]`: callerData is the only string there. */
function splitRest(rest: readonly (string | EventType)[]): EventType[] {
  const [first, ...others] = rest;
  return (typeof first === 'string' ? others : rest) as EventType[];
}

async function subscribe(
  service: ExchangeService,
  options: PushBridgeOptions,
  folderIds: readonly FolderId[] | undefined,
  target: unknown,
  frequency: unknown,
  watermark: unknown,
  eventTypes: readonly EventType[],
): Promise<BridgedPushSubscription> {
  if (typeof frequency !== 'number' || !Number.isInteger(frequency) || frequency < 1 || frequency > 1440) {
    throw new RangeError(`frequency must be 1–1440 minutes (got ${describeValue(frequency)})`);
  }
  if (watermark !== null && watermark !== undefined && typeof watermark !== 'string') throw new TypeError(`watermark must be a string or null (got ${describeValue(watermark)})`);
  const resume = typeof watermark === 'string' && watermark !== '' ? watermark : undefined;
  const kind = options.source ?? (resume === undefined ? 'streaming' : 'pull');
  if (kind !== 'streaming' && kind !== 'pull' && kind !== 'hybrid') throw new RangeError(`source must be one of "streaming", "pull", "hybrid" (got ${describeValue(kind)})`);
  if (resume !== undefined && kind === 'streaming') {
    throw new RangeError("a watermark needs source 'pull' or 'hybrid': a streaming subscription cannot resume from one");
  }
  if (typeof target !== 'function' && !isUri(target) && typeof target !== 'string') {
    throw new TypeError(`url must be a Uri, a URL string or a callback function (got ${describeKind(target)})`);
  }

  const ejs = await loadEjs();
  const endpoint = serviceEndpoint(ejs, service);
  const sourceOptions = {
    ...options.sourceOptions,
    ...endpointOptionsOf(endpoint),
    ...watchedOf(ejs, folderIds, eventTypes),
    ...(resume === undefined ? {} : { watermark: resume }),
  };
  const source: PushSource<SourceSignal> =
    kind === 'streaming' ? streamingSignals(sourceOptions) : kind === 'pull' ? pullSignals(sourceOptions) : hybridSignals(sourceOptions);

  let handle: PushCallbackHandle | undefined;
  const subscription = new Subscription(service, () => handle!);
  let deliver: PushHandler;
  let release = (): void => {};
  if (typeof target === 'function') {
    const callback = target as PushNotificationCallback;
    deliver = (n: PushNotification, context: DeliveryContext) => {
      const events = toEjsEvents(ejs, service, n);
      return callback({
        Subscription: subscription,
        Events: events,
        ItemEvents: events.filter((e): e is ItemEvent => e instanceof ejs.ItemEvent),
        FolderEvents: events.filter((e): e is FolderEvent => e instanceof ejs.FolderEvent),
        IsStatusEvent: isStatusOnly(n),
        SubscriptionId: n.subscriptionId,
        PreviousWatermark: n.previousWatermark ?? null,
        NewWatermark: lastWatermark(n) ?? null,
        MoreEventsAvailable: n.moreEvents,
        Attempt: context.attempt,
        Notification: n,
      });
    };
  } else {
    const poster = createListenerPoster({
      ...options.listener,
      url: isUri(target) ? target.AbsoluteUri : (target as string),
      requestServerVersion: endpoint.requestServerVersion,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    deliver = poster.post;
    release = () => poster.close();
  }

  // Answered notifications move the subscription's Watermark, as push listeners saw it move.
  const tracked: PushHandler = async (n, context) => {
    const status = await deliver(n, context);
    const next = lastWatermark(n);
    if (next !== undefined) subscription.Watermark = next;
    return status;
  };

  let settleSubscribed!: { resolve: () => void; reject: (error: unknown) => void };
  const subscribed = new Promise<void>((resolve, reject) => (settleSubscribed = { resolve, reject }));
  const onLifecycle = (event: SourceLifecycleEvent): void => {
    if (event.type === 'subscribed') {
      subscription.Id = event.subscriptionId;
      settleSubscribed.resolve();
    }
    options.onLifecycle?.(event);
  };
  try {
    handle = pushCallback(source, tracked, { ...options, statusFrequencyMinutes: frequency, onLifecycle });
  } catch (error) {
    release();
    throw error;
  }
  void handle.done.then(release, release);
  // Ended before the subscription existed: the Subscribe failed (or the caller aborted).
  void handle.done.then(
    (end) => settleSubscribed.reject(new Error(`The subscription ended before it was created (${end.reason})`)),
    (error: unknown) => settleSubscribed.reject(error),
  );
  await subscribed;
  return subscription;
}

/**
 * Wraps an ews-javascript-api `ExchangeService` so its push subscriptions are held by the bridge.
 * See the module documentation.
 *
 * @throws TypeError naming the argument when `service` is not an object.
 */
export function pushBridge(service: ExchangeService, options: PushBridgeOptions = {}): PushBridge {
  if (typeof service !== 'object' || service === null) throw new TypeError('service must be an ExchangeService');
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  return {
    SubscribeToPushNotifications(folderIds: FolderId[], url: unknown, frequency: number, watermark: string | null | undefined, ...rest: (string | EventType)[]) {
      return subscribe(service, options, folderIds, url, frequency, watermark, splitRest(rest));
    },
    SubscribeToPushNotificationsOnAllFolders(url: unknown, frequency: number, watermark: string | null | undefined, ...rest: (string | EventType)[]) {
      return subscribe(service, options, undefined, url, frequency, watermark, splitRest(rest));
    },
  } as PushBridge;
}

// Apps that already stream or pull with ews-javascript-api: its ExchangeService and
// StreamingSubscriptionConnection, held by the bridge (see docs/migrate-ews-javascript-api.md).
export { ExchangeService, notificationBridge, type ExchangeServiceConstructor, type NotificationBridge, type NotificationBridgeOptions } from './internal/ejs-service.js';
export {
  StreamingSubscriptionConnection,
  type BridgedException,
  type GapDelegate,
  type NotificationEventDelegate,
  type ResponseHeaderDelegate,
  type StreamingBridgeOptions,
  type StreamingGapEventArgs,
  type SubscriptionErrorDelegate,
} from './internal/ejs-streaming.js';
export type { PullBridgeOptions } from './internal/ejs-pull.js';
