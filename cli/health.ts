/**
 * `forward`'s `/healthz` verdict, as a pure function of what each mailbox bridge observed, so the
 * rules can be tested against a clock of the test's choosing. A process that is up but delivers
 * nothing must not answer "ok": the rules look at the listener side as well as the EWS side.
 *
 * @packageDocumentation
 */
import type { Health } from './metrics.js';

/** Where a mailbox bridge is. */
export type BridgeState = 'starting' | 'connected' | 'disconnected' | 'unsubscribed' | 'closed' | 'failed';

/** What `/healthz` needs to know of one mailbox bridge (a `MailboxBridge` is one). */
export interface MailboxHealthView {
  /** The impersonated mailbox, or `undefined` for the account's own (shown as `""`, as in the metrics). */
  readonly mailbox: string | undefined;
  readonly state: BridgeState;
  /** When `state` last changed (epoch ms). */
  readonly stateSince: number;
  /** The error of the last failed EWS attempt, cleared by a connection. */
  readonly lastError: { readonly code: string } | undefined;
  /** Since when posts to the listener have been failing (epoch ms), `undefined` while they succeed. */
  readonly listenerFailingSince: number | undefined;
  /** The `code` (or name) of the last failed post's error. */
  readonly listenerErrorCode: string | undefined;
  /**
   * Since when EWS attempts have been failing without a connection that then lasted
   * `stableConnectionMs` (epoch ms), `undefined` when the source is healthy.
   */
  readonly retryingSince: number | undefined;
}

/**
 * A source's streak of failed EWS attempts: it starts at the first failure and ends only once a
 * connection has lasted `stableConnectionMs`, so a source that connects and drops again at once
 * (a load balancer closing every stream) keeps failing. Times are epoch milliseconds.
 */
export class RetryStreak {
  private failingSince: number | undefined;
  private connectedSince: number | undefined;

  constructor(private readonly stableConnectionMs: number) {}

  /** The source is connected (or proved it with a keep-alive). */
  connected(now: number): void {
    this.connectedSince ??= now;
  }

  /** A connection ended. */
  disconnected(now: number): void {
    this.settle(now);
    this.connectedSince = undefined;
  }

  /** An attempt failed and will be retried. */
  failed(now: number): void {
    this.disconnected(now);
    this.failingSince ??= now;
  }

  /** Since when attempts have been failing, `undefined` when the source is healthy. */
  since(now: number): number | undefined {
    this.settle(now);
    return this.failingSince;
  }

  private settle(now: number): void {
    if (this.connectedSince !== undefined && now - this.connectedSince >= this.stableConnectionMs) this.failingSince = undefined;
  }
}

/** The thresholds of {@link healthOf}, in milliseconds. */
export interface HealthThresholds {
  /** `metrics.unhealthyAfterSeconds`: how long a mailbox may be down, or its listener failing. */
  readonly unhealthyAfterMs: number;
  /** `ews.startupTimeoutSeconds`: how long a source may keep retrying (flapping included). */
  readonly startupWindowMs: number;
}

/** Why a mailbox makes `/healthz` answer 503. */
export type UnhealthyReason =
  /** Posts to the legacy listener have failed for longer than `unhealthyAfterMs`. */
  | 'listener-failing'
  /** EWS attempts have kept failing (or connections kept dropping) for longer than the start-up window. */
  | 'ews-retrying'
  /** The mailbox has been starting or disconnected for longer than `unhealthyAfterMs`. */
  | 'ews-down'
  /** The mailbox's bridge has ended (the process is stopping). */
  | 'ended'
  /**
   * With a coordinator: this process has not reached Redis for longer than `unhealthyAfterMs`, so
   * it holds no mailbox and cannot take any (process-wide: no `mailbox` in the entry).
   */
  | 'coordinator-unreachable';

/** One entry of the `reasons` list in the `/healthz` body. */
export interface HealthReason {
  /** The mailbox concerned; absent for a reason of the whole process (`coordinator-unreachable`). */
  readonly mailbox?: string;
  readonly reason: UnhealthyReason;
  /** How long the condition has lasted, in milliseconds. */
  readonly forMs: number;
  /** The error `code` behind it, when known. */
  readonly code?: string;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/** The reason one mailbox is unhealthy at `now`, if it is. */
function reasonOf(b: MailboxHealthView, thresholds: HealthThresholds, now: number): (HealthReason & { readonly message: string }) | undefined {
  const mailbox = b.mailbox ?? '';
  if (b.state === 'failed' || b.state === 'closed') {
    return { mailbox, reason: 'ended', forMs: now - b.stateSince, message: 'the bridge has ended' };
  }
  if (b.listenerFailingSince !== undefined && now - b.listenerFailingSince > thresholds.unhealthyAfterMs) {
    const forMs = now - b.listenerFailingSince;
    return {
      mailbox,
      reason: 'listener-failing',
      forMs,
      ...(b.listenerErrorCode === undefined ? {} : { code: b.listenerErrorCode }),
      message: `posts to the listener have been failing for ${seconds(forMs)} (metrics.unhealthyAfterSeconds: ${seconds(thresholds.unhealthyAfterMs)})`,
    };
  }
  if (b.retryingSince !== undefined && now - b.retryingSince > thresholds.startupWindowMs && b.state !== 'unsubscribed') {
    const forMs = now - b.retryingSince;
    return {
      mailbox,
      reason: 'ews-retrying',
      forMs,
      ...(b.lastError === undefined ? {} : { code: b.lastError.code }),
      message: `EWS attempts have been failing for ${seconds(forMs)} (ews.startupTimeoutSeconds: ${seconds(thresholds.startupWindowMs)})`,
    };
  }
  if ((b.state === 'starting' || b.state === 'disconnected') && now - b.stateSince >= thresholds.unhealthyAfterMs) {
    const forMs = now - b.stateSince;
    return {
      mailbox,
      reason: 'ews-down',
      forMs,
      ...(b.lastError === undefined ? {} : { code: b.lastError.code }),
      message: `${b.state} for ${seconds(forMs)} (metrics.unhealthyAfterSeconds: ${seconds(thresholds.unhealthyAfterMs)})`,
    };
  }
  return undefined;
}

/**
 * `/healthz`: healthy unless some mailbox's listener posts have been failing for longer than
 * `unhealthyAfterMs`, its EWS attempts have kept failing for longer than `startupWindowMs`, it has
 * been starting or disconnected for longer than `unhealthyAfterMs`, or its bridge has ended.
 * The body lists every mailbox and, under `reasons`, why it is unhealthy (empty when healthy).
 */
export function healthOf(bridges: readonly MailboxHealthView[], thresholds: HealthThresholds, now = Date.now()): Health {
  const reasons = bridges.flatMap((b) => {
    const r = reasonOf(b, thresholds, now);
    return r === undefined ? [] : [r];
  });
  const mailboxes = bridges.map((b) => ({
    mailbox: b.mailbox ?? '',
    state: b.state,
    sinceMs: now - b.stateSince,
    ...(b.lastError ? { lastError: b.lastError.code } : {}),
    ...(b.listenerFailingSince === undefined ? {} : { listenerFailingForMs: now - b.listenerFailingSince }),
    ...(b.retryingSince === undefined ? {} : { retryingForMs: now - b.retryingSince }),
  }));
  const healthy = reasons.length === 0;
  return { healthy, details: { status: healthy ? 'ok' : 'unhealthy', reasons, mailboxes } };
}
