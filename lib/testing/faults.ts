/**
 * Fault injection: the failures that hurt in production, on demand.
 *
 * Two families:
 * - **Call faults** change how the simulator answers calls. Each is consumed by matching calls —
 *   `times` of them (default 1), optionally only within `windowMs` of injection, only for some
 *   `operation`s and only for one `mailbox`. Faults that act on a response's bytes
 *   (`cut-mid-envelope`, `malformed-xml`, `silence`) hit the whole response of an ordinary call,
 *   and the **next envelope** written on a streaming connection (one already open, or opened later;
 *   `coalesce-envelopes` only acts there); every other call fault is decided when the request
 *   arrives.
 * - **Server actions** (`forget-subscriptions`, `missed-events`) happen at once, to the live
 *   subscriptions they select.
 */
import { describeValue, requireObject } from '../validate.js';
import type { SimulatedOperation } from './request-reader.js';

/** Which calls a call fault affects. */
export interface FaultScope {
  /** Only these operations. @defaultValue every operation */
  readonly operation?: SimulatedOperation | readonly SimulatedOperation[];
  /** Only calls for this mailbox (SMTP address, case-insensitive). @defaultValue every mailbox */
  readonly mailbox?: string;
  /**
   * How many calls (or streaming envelopes) it affects; `Infinity` for all.
   * @defaultValue 1, or `Infinity` when `windowMs` is set
   */
  readonly times?: number;
  /** Affects only calls within this many milliseconds of `inject()`. @defaultValue no limit */
  readonly windowMs?: number;
}

/**
 * A fault to inject with `sim.inject(...)`:
 *
 * | type | what the client sees |
 * |---|---|
 * | `cut-mid-envelope` | the socket is destroyed after half of the response (streaming: of the next envelope) was written; events in that envelope are lost, as on a real server |
 * | `silence` | nothing at all for `forMs`: a streaming connection writes no keep-alives or events (they are held and written afterwards, if the connection still exists — else the next connection gets them); an ordinary call answers `forMs` late |
 * | `server-busy` | HTTP 500 SOAP fault `ErrorServerBusy` with `MessageXml/Value[@Name="BackOffMilliseconds"]` = `backOffMs` |
 * | `http-503` | HTTP 503 Service Unavailable with `Retry-After: retryAfterSeconds` (no header when omitted) |
 * | `http-401` | HTTP 401 with the usual `WWW-Authenticate` challenges, whatever the credentials |
 * | `malformed-xml` | a response (streaming: the next envelope) that is not well-formed: its closing `Envelope` tag is mangled |
 * | `html-error-page` | an IIS-style `text/html` error page with HTTP `status` (default 500) |
 * | `trickle` | the whole response written `bytesPerWrite` bytes at a time (default 1), `intervalMs` apart (default 1) |
 * | `coalesce-envelopes` | (streaming) the next `count` envelopes (default 2) reach the socket in ONE write, so the client gets several envelopes in one chunk; the first is held until the others exist |
 * | `invalid-sync-state` | (SyncFolderItems with a `SyncState`) `ErrorInvalidSyncStateData`, as Exchange answers a state it no longer accepts (too old, the mailbox moved); a call without a state is answered normally (and still uses the fault up) |
 * | `forget-subscriptions` | (server action) the server forgets the selected subscriptions: open streams get `ErrorSubscriptionNotFound` for them in-stream (and `Closed` when none is left), GetEvents/Unsubscribe answer `ErrorSubscriptionNotFound` |
 * | `missed-events` | (server action) the server drops every event it has not yet delivered to the selected subscriptions and says so: `ErrorMissedNotificationEvents` in-stream, on the next GetEvents, or as an Error-class push notification |
 */
export type FaultSpec =
  | ({ readonly type: 'cut-mid-envelope' } & FaultScope)
  | ({ readonly type: 'silence'; readonly forMs: number } & FaultScope)
  | ({ readonly type: 'server-busy'; readonly backOffMs: number } & FaultScope)
  | ({ readonly type: 'http-503'; readonly retryAfterSeconds?: number } & FaultScope)
  | ({ readonly type: 'http-401' } & FaultScope)
  | ({ readonly type: 'malformed-xml' } & FaultScope)
  | ({ readonly type: 'html-error-page'; readonly status?: number } & FaultScope)
  | ({ readonly type: 'trickle'; readonly bytesPerWrite?: number; readonly intervalMs?: number } & FaultScope)
  | ({ readonly type: 'coalesce-envelopes'; readonly count?: number } & FaultScope)
  | ({ readonly type: 'invalid-sync-state' } & FaultScope)
  | ServerAction;

/** Faults that happen at once rather than to calls. */
export type ServerAction =
  | { readonly type: 'forget-subscriptions'; readonly subscriptionIds?: readonly string[]; readonly mailbox?: string }
  | { readonly type: 'missed-events'; readonly subscriptionIds?: readonly string[]; readonly mailbox?: string };

/** A call fault (everything but the server actions). */
export type CallFault = Exclude<FaultSpec, ServerAction>;

/** Call faults that act on the bytes of a streaming envelope rather than on the request. */
export type EnvelopeFault = Extract<CallFault, { type: 'cut-mid-envelope' | 'silence' | 'malformed-xml' | 'coalesce-envelopes' }>;

const ENVELOPE_TYPES: ReadonlySet<string> = new Set(['cut-mid-envelope', 'silence', 'malformed-xml', 'coalesce-envelopes']);

/** Whether a fault is a server action. */
export function isServerAction(fault: FaultSpec): fault is ServerAction {
  return fault.type === 'forget-subscriptions' || fault.type === 'missed-events';
}

/**
 * Checks a fault spec; throws a `RangeError` naming the bad field (`fault.times must be a number ≥ 1
 * (got 0)`), a `TypeError` when the spec is not an object.
 */
export function validateFault(fault: FaultSpec): void {
  requireObject(fault, 'fault');
  const check = (name: string, value: number | undefined, ok: boolean, requirement: string): void => {
    if (value !== undefined && !ok) throw new RangeError(`fault.${name} must be ${requirement} (got ${describeValue(value)})`);
  };
  const nonNegative = (name: string, value: number | undefined): void => check(name, value, typeof value === 'number' && value >= 0, 'a number ≥ 0');
  if (isServerAction(fault)) return;
  check('times', fault.times, typeof fault.times === 'number' && fault.times >= 1, 'a number ≥ 1 (or Infinity)');
  nonNegative('windowMs', fault.windowMs);
  if (fault.type === 'silence') nonNegative('forMs', fault.forMs);
  if (fault.type === 'server-busy') nonNegative('backOffMs', fault.backOffMs);
  if (fault.type === 'http-503') nonNegative('retryAfterSeconds', fault.retryAfterSeconds);
  if (fault.type === 'trickle') {
    check('bytesPerWrite', fault.bytesPerWrite, typeof fault.bytesPerWrite === 'number' && fault.bytesPerWrite >= 1, 'a number ≥ 1');
    nonNegative('intervalMs', fault.intervalMs);
  }
  if (fault.type === 'coalesce-envelopes') check('count', fault.count, typeof fault.count === 'number' && Number.isInteger(fault.count) && fault.count >= 2, 'an integer ≥ 2');
  if (fault.type === 'html-error-page') check('status', fault.status, typeof fault.status === 'number' && fault.status >= 400 && fault.status <= 599, '400–599');
}

interface Armed {
  readonly fault: CallFault;
  remaining: number;
  readonly until: number;
}

/** The injected call faults, in injection order; the first matching one is consumed. */
export class FaultBook {
  private armed: Armed[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Arms a call fault. */
  add(fault: CallFault): void {
    const remaining = fault.times ?? (fault.windowMs === undefined ? 1 : Infinity);
    this.armed.push({ fault, remaining, until: fault.windowMs === undefined ? Infinity : this.now() + fault.windowMs });
  }

  /** Consumes the first armed fault that matches, of the given stage. */
  take(stage: 'request' | 'envelope', operation: SimulatedOperation | undefined, mailbox: string | undefined): CallFault | undefined {
    const now = this.now();
    this.armed = this.armed.filter((a) => a.remaining > 0 && a.until >= now);
    for (const armed of this.armed) {
      const { fault } = armed;
      const isEnvelope = ENVELOPE_TYPES.has(fault.type);
      // Streaming connections take their byte-level faults per envelope; everything else per request.
      if (operation === 'GetStreamingEvents' && (stage === 'envelope') !== isEnvelope) continue;
      if (stage === 'envelope' && operation !== 'GetStreamingEvents') continue;
      if (fault.operation !== undefined) {
        const ops = typeof fault.operation === 'string' ? [fault.operation] : fault.operation;
        if (operation === undefined || !ops.includes(operation)) continue;
      }
      if (fault.mailbox !== undefined && fault.mailbox.toLowerCase() !== mailbox) continue;
      armed.remaining--;
      return fault;
    }
    return undefined;
  }

  /** Disarms every call fault. */
  clear(): void {
    this.armed = [];
  }

  /** Call faults still armed. */
  get pending(): readonly CallFault[] {
    const now = this.now();
    return this.armed.filter((a) => a.remaining > 0 && a.until >= now).map((a) => a.fault);
  }
}
