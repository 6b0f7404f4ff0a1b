/**
 * Push notifications, as Exchange sends them since the 2019 security update: anonymous HTTP POSTs of
 * `SendNotification` envelopes to the subscriber's URL. The listener answers `SendNotificationResult`
 * with `SubscriptionStatus` `OK` (keep going) or `Unsubscribe` (stop). When idle, a StatusEvent goes
 * out every StatusFrequency. A failed POST (network error, non-200, or an answer that is not a
 * SendNotificationResult) is retried after 30 s, 1, 2, 4, 8… minutes until the next retry would
 * pass StatusFrequency; then the subscription is dropped.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../logger.js';
import { MAX_EVENTS_PER_GET_EVENTS } from './pull.js';
import type { NotificationEvent } from '../model.js';
import { buildSendNotification } from '../ews/send-notification.js';
import type { WireEvent } from './response-writer.js';
import type { Subscription } from './subscriptions.js';
import type { TimerHandle, TimerSet } from './timers.js';
import { NS, readXmlTree, type XmlElement } from '../ews/xml-tree.js';

/** One POST the simulator made to a push listener. */
export interface PushAttempt {
  readonly at: Date;
  readonly subscriptionId: string;
  readonly url: string;
  /** The SendNotification envelope posted. */
  readonly body: string;
  /** The listener's HTTP status, when it answered. */
  readonly status: number | undefined;
  /** The listener's SubscriptionStatus, when its answer was a valid SendNotificationResult. */
  readonly subscriptionStatus: 'OK' | 'Unsubscribe' | undefined;
  /** Why the attempt failed, when it did. */
  readonly error: string | undefined;
}

/** What push delivery needs from the simulator. */
export interface PushHost {
  readonly timers: TimerSet;
  readonly timeScale: number;
  readonly logger: Logger;
  /** Removes a subscription (the listener said Unsubscribe, or retries ran out). */
  drop(sub: Subscription): void;
}

interface PushState {
  request: ClientRequest | undefined;
  inFlight: Promise<void> | undefined;
  timer: TimerHandle | undefined;
  /** Retry number (0 = not retrying) and time spent retrying, for the schedule. */
  retries: number;
  retryElapsedMs: number;
}

/** The first retry comes 30 s after a failure; each later one waits twice as long. */
const FIRST_RETRY_MINUTES = 0.5;

function findChild(el: XmlElement | undefined, ns: string, local: string): XmlElement | undefined {
  return el?.children.find((c) => c.ns === ns && c.local === local);
}

/** The model event of a stored one (without the simulator's bookkeeping fields). */
function toModelEvent(event: WireEvent): NotificationEvent {
  if (event.type === 'Status') return event;
  const { seq: _seq, mailbox: _mailbox, ...wire } = event;
  return wire;
}

/** Reads a listener's answer; `undefined` unless it is a well-formed SendNotificationResult. */
export function readSubscriptionStatus(body: string): 'OK' | 'Unsubscribe' | undefined {
  try {
    const root = readXmlTree(body);
    if (root.ns !== NS.soap || root.local !== 'Envelope') return undefined;
    const result = findChild(findChild(root, NS.soap, 'Body'), NS.m, 'SendNotificationResult');
    const status = findChild(result, NS.m, 'SubscriptionStatus')?.text.trim();
    return status === 'OK' || status === 'Unsubscribe' ? status : undefined;
  } catch {
    return undefined;
  }
}

/** Sends push notifications for every push subscription. */
export class PushDelivery {
  private readonly states = new Map<Subscription, PushState>();
  readonly attempts: PushAttempt[] = [];
  private closed = false;

  constructor(private readonly host: PushHost) {}

  /** Starts a new push subscription: the first StatusEvent goes out after StatusFrequency. */
  start(sub: Subscription): void {
    if (this.closed) return;
    this.states.set(sub, { request: undefined, inFlight: undefined, timer: undefined, retries: 0, retryElapsedMs: 0 });
    this.armStatus(sub);
  }

  /** Something happened for `sub`: post it now, unless a post is in flight or being retried. */
  wake(sub: Subscription): void {
    const state = this.states.get(sub);
    if (!state || state.inFlight || state.retries > 0) return;
    this.host.timers.clear(state.timer);
    state.timer = this.host.timers.set(() => {
      state.timer = undefined;
      this.send(sub);
    }, 0);
  }

  /** Stops posting for `sub` (aborting a post in flight). */
  stop(sub: Subscription): void {
    const state = this.states.get(sub);
    if (!state) return;
    this.states.delete(sub);
    this.host.timers.clear(state.timer);
    state.request?.destroy();
  }

  /** Stops everything and waits for posts in flight to settle. */
  async close(): Promise<void> {
    this.closed = true;
    const inFlight = [...this.states.values()].map((s) => s.inFlight).filter((p): p is Promise<void> => p !== undefined);
    for (const sub of [...this.states.keys()]) this.stop(sub);
    await Promise.all(inFlight);
  }

  private get minuteMs(): number {
    return 60_000 * this.host.timeScale;
  }

  private armStatus(sub: Subscription): void {
    const state = this.states.get(sub);
    if (!state) return;
    this.host.timers.clear(state.timer);
    state.timer = this.host.timers.set(() => {
      state.timer = undefined;
      this.send(sub);
    }, sub.extra.statusFrequencyMs ?? 30 * this.minuteMs);
  }

  private send(sub: Subscription): void {
    const state = this.states.get(sub);
    if (!state || state.inFlight || this.closed) return;
    const { events, more } = sub.pending(sub.cursor, MAX_EVENTS_PER_GET_EVENTS);
    const upTo = events.length > 0 ? events[events.length - 1]!.seq : sub.mailbox.seq;
    const wire: WireEvent[] = events.length > 0 ? events : [{ type: 'Status', watermark: sub.mailbox.watermarkAt(upTo) }];
    const missed = sub.missedPending;
    const body = buildSendNotification(
      { subscriptionId: sub.id, previousWatermark: sub.mailbox.watermarkAt(sub.cursor), moreEvents: more, events: wire.map(toModelEvent) },
      missed
        ? {
            responseClass: 'Error',
            responseCode: 'ErrorMissedNotificationEvents',
            messageText: 'One or more notification events were dropped for this subscription.',
            descriptiveLinkKey: 0,
          }
        : {},
    );
    state.inFlight = this.post(sub, state, body).then((answer) => {
      state.inFlight = undefined;
      state.request = undefined;
      if (!this.states.has(sub)) return;
      if (answer === 'OK') {
        sub.cursor = Math.max(sub.cursor, upTo);
        if (missed) sub.missedPending = false;
        state.retries = 0;
        state.retryElapsedMs = 0;
        if (more || sub.pending(sub.cursor, 1).events.length > 0) this.wake(sub);
        else this.armStatus(sub);
      } else if (answer === 'Unsubscribe') {
        this.host.drop(sub);
      } else {
        this.retry(sub, state);
      }
    });
  }

  private retry(sub: Subscription, state: PushState): void {
    const delayMs = FIRST_RETRY_MINUTES * 2 ** state.retries * this.minuteMs;
    const frequencyMs = sub.extra.statusFrequencyMs ?? 30 * this.minuteMs;
    if (state.retryElapsedMs + delayMs > frequencyMs) {
      this.host.logger.warn('EwsSimulator: push listener kept failing; subscription dropped', { subscriptionId: sub.id });
      this.host.drop(sub);
      return;
    }
    state.retries++;
    state.retryElapsedMs += delayMs;
    state.timer = this.host.timers.set(() => {
      state.timer = undefined;
      this.send(sub);
    }, delayMs);
  }

  /** POSTs one envelope anonymously; resolves with the listener's answer, `undefined` on any failure. */
  private post(sub: Subscription, state: PushState, body: string): Promise<'OK' | 'Unsubscribe' | undefined> {
    const url = sub.extra.url!;
    const record = (status: number | undefined, subscriptionStatus: 'OK' | 'Unsubscribe' | undefined, error: string | undefined): void => {
      this.attempts.push({ at: new Date(), subscriptionId: sub.id, url, body, status, subscriptionStatus, error });
    };
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answer: 'OK' | 'Unsubscribe' | undefined, status: number | undefined, error: string | undefined): void => {
        if (settled) return;
        settled = true;
        record(status, answer, error);
        if (error) this.host.logger.debug('EwsSimulator: push failed', { subscriptionId: sub.id, error });
        resolve(answer);
      };
      let req: ClientRequest;
      try {
        const make = url.toLowerCase().startsWith('https:') ? httpsRequest : httpRequest;
        req = make(url, {
          method: 'POST',
          agent: false,
          timeout: Math.max(1_000, this.minuteMs),
          headers: {
            'Content-Type': 'text/xml; charset=utf-8',
            'Content-Length': Buffer.byteLength(body),
            SOAPAction: `"${NS.m}/SendNotification"`,
            'User-Agent': 'ExchangeServicesClient/15.01.2507.006',
            Connection: 'close',
          },
        });
      } catch (err) {
        settle(undefined, undefined, err instanceof Error ? err.message : String(err));
        return;
      }
      state.request = req;
      req.on('timeout', () => req.destroy(new Error('listener timed out')));
      req.on('error', (err) => settle(undefined, undefined, err.message));
      let answered = false;
      req.on('close', () => {
        if (!answered) settle(undefined, undefined, 'connection closed before an answer');
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => settle(undefined, res.statusCode, err.message));
        res.on('close', () => {
          if (!res.complete) settle(undefined, res.statusCode, 'answer cut short');
        });
        res.on('end', () => {
          const status = res.statusCode;
          const answer = status === 200 ? readSubscriptionStatus(Buffer.concat(chunks).toString('utf8')) : undefined;
          settle(answer, status, answer === undefined ? `listener answered HTTP ${status} without a SendNotificationResult` : undefined);
        });
      });
      req.end(body);
    });
  }
}
