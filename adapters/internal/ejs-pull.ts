/**
 * ews-javascript-api's pull API — `SubscribeToPullNotifications` and `PullSubscription.GetEvents()`
 * — on the bridge's pull source. The source polls in the background, resubscribes from the last
 * watermark when the server loses the subscription (deduplicating what the server sends twice),
 * backs off as the server asks, and checkpoints each batch once the app is done with it, which
 * ews-javascript-api's own API says by calling `GetEvents()` again (or `Unsubscribe()`).
 *
 * @packageDocumentation
 */
import type { EventType, ExchangeService, FolderId, GetEventsResults, NotificationEvent, PullSubscription } from 'ews-javascript-api';
import type { Subscription as RxSubscription } from 'rxjs';
import { MemoryCheckpointStore, deferAck, pullSignals, sourceClosed, type AckFunction, type PullOptions, type PushNotification, type SourceSignal } from '../../lib/index.js';
import type { Observable, Observer } from 'rxjs';
import { endpointOptionsOf, serviceEndpoint, watchedOf, type EjsModule } from './ejs-config.js';
import { toEjsEvents } from './ejs-events.js';
import { requireEjs } from './ejs-module.js';
import { describeValue, requireObject } from '../../lib/validate.js';
import { lastWatermark } from '../../lib/model.js';

/** Options the service and the Subscribe arguments decide, or that GetEvents' contract fixes. */
type DecidedBySubscribe =
  | 'url'
  | 'auth'
  | 'mailbox'
  | 'anchorMailbox'
  | 'folders'
  | 'subscribeToAllFolders'
  | 'eventTypes'
  | 'requestServerVersion'
  | 'headers'
  | 'watermark'
  | 'subscriptionTimeoutMinutes'
  | 'ackMode'
  | 'emitStatusEvents'
  | 'signal'
  | 'onLifecycle';

/**
 * How the bridge holds a pull subscription (every field optional): `pollIntervalMs` (how often the
 * background source asks Exchange; default `10_000`, at most half the subscription's timeout),
 * `checkpoint` (a `CheckpointStore`: where the watermark of every batch the app is done with is
 * kept, so a restarted app resumes there — it wins over the `watermark` argument once it holds
 * one), `checkpointKey`, `retry`, `logger` … as the pull source's options.
 */
export type PullBridgeOptions = Omit<PullOptions, DecidedBySubscribe>;

type Construct<T, A extends unknown[]> = new (...args: A) => T;

/**
 * How long a `GetEvents()` after a batch with `MoreEvents` waits for the next batch (the source
 * asks at once) before it answers with nothing new, rather than keep the app waiting on a server
 * that is slow or failing.
 */
const MORE_EVENTS_WAIT_MS = 2_000;

/** The fields of ews-javascript-api's `GetEventsResults` its own reader fills (internal there). */
interface ResultsFields {
  subscriptionId: string | null;
  previousWatermark: string | null;
  newWatermark: string | null;
  moreEventsAvailable: boolean;
  events: NotificationEvent[];
}

/**
 * `SubscribeToPullNotifications(folderIds, timeout, watermark, ...eventTypes)` (or `…OnAllFolders`
 * when `folderIds` is undefined) for `service`: resolves with ews-javascript-api's own
 * `PullSubscription` once the EWS subscription exists.
 */
export async function subscribeToPull(
  service: ExchangeService,
  options: PullBridgeOptions,
  folderIds: readonly FolderId[] | undefined,
  timeout: unknown,
  watermark: unknown,
  eventTypes: readonly EventType[],
): Promise<PullSubscription> {
  const ejs = requireEjs();
  requireObject(options, 'options');
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 1440) {
    throw new RangeError(`timeout must be 1–1440 minutes (got ${describeValue(timeout)})`);
  }
  if (watermark !== null && watermark !== undefined && typeof watermark !== 'string') throw new TypeError(`watermark must be a string or null (got ${describeValue(watermark)})`);
  const endpoint = serviceEndpoint(ejs, service);
  // One store for every run of the source (see PullHolder's restart), so a restart resumes.
  const checkpoint = options.checkpoint ?? new MemoryCheckpointStore();
  const sourceOptions = {
    ...options,
    checkpoint,
    ...endpointOptionsOf(endpoint),
    ...watchedOf(ejs, folderIds, eventTypes),
    subscriptionTimeoutMinutes: timeout,
    ...(typeof watermark === 'string' && watermark !== '' ? { watermark } : {}),
    // Idle answers only move the watermark; the next batch with events waits for GetEvents().
    emitStatusEvents: false,
  } as const;
  const subscription = new (ejs.PullSubscription as unknown as Construct<PullSubscription, [ExchangeService]>)(service);
  if (typeof watermark === 'string' && watermark !== '') subscription.Watermark = watermark;
  const holder = new PullHolder(ejs, service, subscription, () => pullSignals(sourceOptions));
  Object.defineProperty(subscription, 'GetEvents', { value: () => holder.getEvents(), configurable: true, writable: true });
  Object.defineProperty(subscription, 'Unsubscribe', { value: () => holder.unsubscribe(), configurable: true, writable: true });
  await holder.start();
  return subscription;
}

interface Batch {
  readonly notification: PushNotification;
  readonly ack: AckFunction;
}

/** One bridged pull subscription: the source's batches waiting for `GetEvents()`. */
class PullHolder {
  private readonly ready: Batch[] = [];
  /** The batch the last GetEvents() returned: acknowledged by the next GetEvents() or Unsubscribe(). */
  private handedOut: Batch | undefined;
  private failure: { error: unknown } | undefined;
  private waiter: (() => void) | undefined;
  private rx: RxSubscription | undefined;
  /** Whether the current run of the source has ended (failed, or unsubscribed). */
  private ended = false;
  /** Whether the app unsubscribed. */
  private closed = false;
  /** GetEvents() calls run one after another, as their watermarks chain. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ejs: EjsModule,
    private readonly service: ExchangeService,
    private readonly subscription: PullSubscription,
    private readonly source: () => Observable<SourceSignal>,
  ) {}

  /** Runs the source; resolves when its subscription exists, rejects when it fails before. */
  start(): Promise<void> {
    this.ended = false;
    return new Promise<void>((resolve, reject) => {
      let subscribed = false;
      const observer: Observer<SourceSignal> = {
        next: (signal) => {
          switch (signal.type) {
            case 'subscribed':
              this.subscription.Id = signal.subscriptionId;
              if (!subscribed) {
                subscribed = true;
                resolve();
              }
              return;
            case 'notification':
              // Taken over now (during next), acknowledged when the app asks for the batch after it.
              this.ready.push({ notification: signal.notification, ack: deferAck(signal.notification) });
              this.wake();
              return;
            case 'retrying':
              // A waiting GetEvents() answers (with nothing) rather than wait out a back-off.
              this.wake();
              return;
            default:
              return;
          }
        },
        error: (error: unknown) => {
          this.ended = true;
          this.failure = { error };
          this.wake();
          if (!subscribed) reject(error);
        },
        complete: () => {
          this.ended = true;
          this.wake();
          if (!subscribed) reject(new Error('The pull subscription ended before it was created'));
        },
      };
      this.rx = this.source().subscribe(observer);
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** `PullSubscription.GetEvents()`. */
  getEvents(): Promise<GetEventsResults> {
    const run = this.queue.then(() => this.nextResults());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async nextResults(): Promise<GetEventsResults> {
    // The app asks for more: it is done with the previous batch (its watermark may be checkpointed).
    const previous = this.handedOut;
    this.handedOut = undefined;
    const moreExpected = previous?.notification.moreEvents === true;
    if (previous) void previous.ack().catch(() => undefined);
    if (this.ready.length === 0 && moreExpected && !this.ended && !this.closed) {
      // MoreEvents: the source asks again at once; hand that batch over rather than an empty one.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, MORE_EVENTS_WAIT_MS);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const batch = this.ready.shift();
    if (!batch && this.failure) {
      // As ews-javascript-api's GetEvents(): this call fails with the error; the next one tries
      // again — from the last checkpointed watermark, so what the server holds is not lost.
      const { error } = this.failure;
      this.failure = undefined;
      if (!this.closed) this.start().catch(() => undefined);
      throw error;
    }
    if (batch) this.handedOut = batch;
    const results = this.results(batch?.notification);
    this.subscription.Watermark = (results as unknown as ResultsFields).newWatermark as string;
    (this.subscription as unknown as { moreEventsAvailable: boolean }).moreEventsAvailable = (results as unknown as ResultsFields).moreEventsAvailable;
    return results;
  }

  /** ews-javascript-api's own `GetEventsResults`, filled in wire order (its reader groups by event type). */
  private results(notification: PushNotification | undefined): GetEventsResults {
    const results = new (this.ejs.GetEventsResults as unknown as Construct<GetEventsResults, []>)();
    const current = this.subscription.Watermark ?? null;
    const fields: ResultsFields = notification
      ? {
          subscriptionId: notification.subscriptionId,
          previousWatermark: notification.previousWatermark ?? current,
          newWatermark: lastWatermark(notification) ?? current,
          moreEventsAvailable: notification.moreEvents,
          events: toEjsEvents(this.ejs, this.service, notification),
        }
      : { subscriptionId: this.subscription.Id ?? null, previousWatermark: current, newWatermark: current, moreEventsAvailable: false, events: [] };
    Object.assign(results, fields);
    return results;
  }

  /**
   * `PullSubscription.Unsubscribe()`: checkpoints the last batch handed out, then ends, and
   * resolves once EWS answered the Unsubscribe (or the source's unsubscribeTimeoutMs passed), as
   * ews-javascript-api's own resolves after its Unsubscribe call. Never rejects.
   */
  async unsubscribe(): Promise<void> {
    this.closed = true;
    this.wake();
    await this.queue;
    const previous = this.handedOut;
    this.handedOut = undefined;
    if (previous) await previous.ack().catch(() => undefined);
    this.ended = true;
    const rx = this.rx;
    rx?.unsubscribe();
    this.wake();
    await sourceClosed(rx);
  }
}
