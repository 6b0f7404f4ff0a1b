/**
 * The two ways an ews-javascript-api app reaches the bridge's streaming and pull subscriptions:
 * `notificationBridge(service)` (ews-javascript-api's Subscribe methods, for a service the app
 * already has) and the drop-in `ExchangeService` (ews-javascript-api's own class, with those methods
 * bridged: the app changes one import).
 *
 * @packageDocumentation
 */
import type * as Ejs from 'ews-javascript-api';
import type { EventType, FolderId, PullSubscription, StreamingSubscription } from 'ews-javascript-api';
import { describeValue, requireObject } from '../../lib/validate.js';
import { requireEjs } from './ejs-module.js';
import { subscribeToPull, type PullBridgeOptions } from './ejs-pull.js';
import { subscribeToStreaming, type StreamingBridgeOptions } from './ejs-streaming.js';

/** Options of {@link notificationBridge} and of the drop-in `ExchangeService`'s `bridgeOptions`. */
export interface NotificationBridgeOptions {
  /** How streaming subscriptions are held (back-off, heartbeat, connection timeout, logger …). Default: none. */
  readonly streaming?: StreamingBridgeOptions;
  /** How pull subscriptions are held (poll interval, checkpoint store, back-off, logger …). Default: none. */
  readonly pull?: PullBridgeOptions;
}

/** ews-javascript-api's streaming and pull Subscribe methods, with its argument lists, on the bridge. */
export interface NotificationBridge {
  /** As `ExchangeService.SubscribeToStreamingNotifications(folderIds, ...eventTypes)`. */
  SubscribeToStreamingNotifications(folderIds: FolderId[], ...eventTypes: EventType[]): Promise<StreamingSubscription>;
  /** As `ExchangeService.SubscribeToStreamingNotificationsOnAllFolders(...eventTypes)`. */
  SubscribeToStreamingNotificationsOnAllFolders(...eventTypes: EventType[]): Promise<StreamingSubscription>;
  /**
   * As `ExchangeService.SubscribeToPullNotifications(folderIds, timeout, watermark, ...eventTypes)`:
   * `timeout` 1–1440 minutes; a non-empty `watermark` resumes from it (a checkpoint store that
   * holds a position wins over it).
   */
  SubscribeToPullNotifications(folderIds: FolderId[], timeout: number, watermark: string | null | undefined, ...eventTypes: EventType[]): Promise<PullSubscription>;
  /** As `ExchangeService.SubscribeToPullNotificationsOnAllFolders(timeout, watermark, ...eventTypes)`. */
  SubscribeToPullNotificationsOnAllFolders(timeout: number, watermark: string | null | undefined, ...eventTypes: EventType[]): Promise<PullSubscription>;
}

function bridgeOf(service: Ejs.ExchangeService, options: () => NotificationBridgeOptions): NotificationBridge {
  return {
    SubscribeToStreamingNotifications: (folderIds, ...eventTypes) => subscribeToStreaming(service, options().streaming ?? {}, folderIds, eventTypes),
    SubscribeToStreamingNotificationsOnAllFolders: (...eventTypes) => subscribeToStreaming(service, options().streaming ?? {}, undefined, eventTypes),
    SubscribeToPullNotifications: (folderIds, timeout, watermark, ...eventTypes) =>
      subscribeToPull(service, options().pull ?? {}, folderIds, timeout, watermark, eventTypes),
    SubscribeToPullNotificationsOnAllFolders: (timeout, watermark, ...eventTypes) =>
      subscribeToPull(service, options().pull ?? {}, undefined, timeout, watermark, eventTypes),
  };
}

/**
 * ews-javascript-api's streaming and pull Subscribe methods for an `ExchangeService` the app already
 * has: the subscriptions they resolve with are ews-javascript-api's own `StreamingSubscription` /
 * `PullSubscription`, held by the bridge (use them with this adapter's
 * `StreamingSubscriptionConnection`; `GetEvents()` and `Unsubscribe()` work as before).
 *
 * ```ts
 * const subscription = await notificationBridge(service).SubscribeToStreamingNotifications([new FolderId(WellKnownFolderName.Inbox)], EventType.NewMail);
 * ```
 *
 * @throws TypeError when `service` or `options` is not an object.
 */
export function notificationBridge(service: Ejs.ExchangeService, options: NotificationBridgeOptions = {}): NotificationBridge {
  if (typeof service !== 'object' || service === null) throw new TypeError(`service must be an ExchangeService (got ${describeValue(service)})`);
  requireObject(options, 'options');
  return bridgeOf(service, () => options);
}

// ---------------------------------------------------------------------------------------------

/**
 * ews-javascript-api's `ExchangeService`, with its streaming and pull Subscribe methods held by the
 * bridge; every other member is ews-javascript-api's own (it *is* one: `instanceof` holds).
 */
export interface ExchangeService extends Ejs.ExchangeService {
  /** How the bridge holds this service's subscriptions; set it before subscribing. Default `{}`. */
  bridgeOptions: NotificationBridgeOptions;
  SubscribeToStreamingNotifications(folderIds: FolderId[], ...eventTypes: EventType[]): Promise<StreamingSubscription>;
  SubscribeToStreamingNotificationsOnAllFolders(...eventTypes: EventType[]): Promise<StreamingSubscription>;
  SubscribeToPullNotifications(folderIds: FolderId[], timeout: number, watermark: string, ...eventTypes: EventType[]): Promise<PullSubscription>;
  SubscribeToPullNotificationsOnAllFolders(timeout: number, watermark: string, ...eventTypes: EventType[]): Promise<PullSubscription>;
}

/** The constructors of ews-javascript-api's `ExchangeService`. */
export interface ExchangeServiceConstructor {
  new (): ExchangeService;
  new (timeZone: Ejs.TimeZoneInfo): ExchangeService;
  new (requestedServerVersion: Ejs.ExchangeVersion): ExchangeService;
  new (requestedServerVersion: Ejs.ExchangeVersion, timeZone: Ejs.TimeZoneInfo): ExchangeService;
  readonly prototype: ExchangeService;
  /**
   * Options for every service that does not set its own `bridgeOptions.streaming` / `.pull`: set
   * once at start-up, so the app's code that makes services stays as it is. Default `{}`.
   */
  defaultBridgeOptions: NotificationBridgeOptions;
}

let linked = false;

/**
 * The drop-in `ExchangeService`. A function rather than a `class … extends`, because its base class
 * lives in an optional peer dependency that must not load when this module does: the prototype
 * chain is linked to ews-javascript-api's `ExchangeService` on first construction.
 */
function BridgedExchangeService(this: unknown, ...args: unknown[]): ExchangeService {
  if (new.target === undefined) throw new TypeError("Class constructor ExchangeService cannot be invoked without 'new'");
  const ejs = requireEjs();
  if (!linked) {
    Object.setPrototypeOf(BridgedExchangeService.prototype, ejs.ExchangeService.prototype);
    Object.setPrototypeOf(BridgedExchangeService, ejs.ExchangeService);
    linked = true;
  }
  const service = Reflect.construct(ejs.ExchangeService, args, new.target) as ExchangeService;
  service.bridgeOptions = {};
  return service;
}

/** The service's own options, section by section, else the defaults. */
function optionsOf(service: ExchangeService): NotificationBridgeOptions {
  const own = service.bridgeOptions ?? {};
  const defaults = ExchangeService.defaultBridgeOptions ?? {};
  const streaming = own.streaming ?? defaults.streaming;
  const pull = own.pull ?? defaults.pull;
  return { ...(streaming === undefined ? {} : { streaming }), ...(pull === undefined ? {} : { pull }) };
}

const methods: Pick<ExchangeService, keyof NotificationBridge> = {
  SubscribeToStreamingNotifications(this: ExchangeService, folderIds: FolderId[], ...eventTypes: EventType[]) {
    return bridgeOf(this, () => optionsOf(this)).SubscribeToStreamingNotifications(folderIds, ...eventTypes);
  },
  SubscribeToStreamingNotificationsOnAllFolders(this: ExchangeService, ...eventTypes: EventType[]) {
    return bridgeOf(this, () => optionsOf(this)).SubscribeToStreamingNotificationsOnAllFolders(...eventTypes);
  },
  SubscribeToPullNotifications(this: ExchangeService, folderIds: FolderId[], timeout: number, watermark: string, ...eventTypes: EventType[]) {
    return bridgeOf(this, () => optionsOf(this)).SubscribeToPullNotifications(folderIds, timeout, watermark, ...eventTypes);
  },
  SubscribeToPullNotificationsOnAllFolders(this: ExchangeService, timeout: number, watermark: string, ...eventTypes: EventType[]) {
    return bridgeOf(this, () => optionsOf(this)).SubscribeToPullNotificationsOnAllFolders(timeout, watermark, ...eventTypes);
  },
};
for (const [name, method] of Object.entries(methods)) {
  Object.defineProperty(BridgedExchangeService.prototype, name, { value: method, writable: true, configurable: true });
}

/**
 * ews-javascript-api's `ExchangeService` with `SubscribeToStreamingNotifications`,
 * `SubscribeToStreamingNotificationsOnAllFolders`, `SubscribeToPullNotifications` and
 * `SubscribeToPullNotificationsOnAllFolders` held by the bridge. Import it from here instead of from
 * ews-javascript-api (with this adapter's `StreamingSubscriptionConnection`); nothing else changes.
 * ews-javascript-api loads when the first one is constructed.
 */
export const ExchangeService = BridgedExchangeService as unknown as ExchangeServiceConstructor;
ExchangeService.defaultBridgeOptions = {};
