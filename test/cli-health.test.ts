/**
 * `/healthz`'s rules on a clock of the test's choosing: a failing listener, a source that keeps
 * retrying or flapping past its start-up window, a mailbox down too long, and the body's `reasons`.
 */
import { describe, expect, it } from 'vitest';
import { healthOf, RetryStreak, type MailboxHealthView } from '../cli/health.js';

const T = 1_000_000;
const thresholds = { unhealthyAfterMs: 120_000, startupWindowMs: 30_000 };

function view(overrides: Partial<MailboxHealthView> = {}): MailboxHealthView {
  return {
    mailbox: undefined,
    state: 'connected',
    stateSince: T,
    lastError: undefined,
    listenerFailingSince: undefined,
    listenerErrorCode: undefined,
    retryingSince: undefined,
    ...overrides,
  };
}

describe('healthOf', () => {
  it('is ok with an empty reasons list while everything works; the own mailbox is ""', () => {
    expect(healthOf([view()], thresholds, T + 500_000)).toEqual({
      healthy: true,
      details: { status: 'ok', reasons: [], mailboxes: [{ mailbox: '', state: 'connected', sinceMs: 500_000 }] },
    });
  });

  it('turns unhealthy when listener posts have failed for longer than unhealthyAfterMs, not before', () => {
    const failing = view({ mailbox: 'alice@contoso.com', listenerFailingSince: T, listenerErrorCode: 'EWS_HTTP_ERROR' });
    expect(healthOf([failing], thresholds, T + 120_000).healthy).toBe(true);
    const health = healthOf([failing], thresholds, T + 120_001);
    expect(health.healthy).toBe(false);
    expect(health.details).toMatchObject({
      status: 'unhealthy',
      reasons: [{ mailbox: 'alice@contoso.com', reason: 'listener-failing', forMs: 120_001, code: 'EWS_HTTP_ERROR', message: expect.stringContaining('posts to the listener have been failing for 120 s') }],
      mailboxes: [{ mailbox: 'alice@contoso.com', listenerFailingForMs: 120_001 }],
    });
  });

  it('turns unhealthy when a source has been retrying past the start-up window, even while it shows connected', () => {
    const flapping = view({ state: 'connected', retryingSince: T, lastError: { code: 'EWS_CONNECTION_FAILED' } });
    expect(healthOf([flapping], thresholds, T + 30_000).healthy).toBe(true);
    expect(healthOf([flapping], thresholds, T + 30_001).details).toMatchObject({ reasons: [{ mailbox: '', reason: 'ews-retrying', code: 'EWS_CONNECTION_FAILED' }] });
  });

  it('turns unhealthy when a mailbox is starting or disconnected for unhealthyAfterMs, or has ended', () => {
    expect(healthOf([view({ state: 'disconnected' })], thresholds, T + 119_999).healthy).toBe(true);
    expect(healthOf([view({ state: 'disconnected' })], thresholds, T + 120_000).details).toMatchObject({ reasons: [{ reason: 'ews-down' }] });
    expect(healthOf([view({ state: 'failed' })], thresholds, T + 1).details).toMatchObject({ reasons: [{ reason: 'ended' }] });
    expect(healthOf([view({ state: 'unsubscribed', stateSince: 0 })], thresholds, T).healthy).toBe(true);
  });

  it('names every unhealthy mailbox and only those', () => {
    const health = healthOf([view({ mailbox: 'a@contoso.com' }), view({ mailbox: 'b@contoso.com', listenerFailingSince: 0 })], thresholds, T);
    expect((health.details as { reasons: { mailbox: string }[] }).reasons.map((r) => r.mailbox)).toEqual(['b@contoso.com']);
  });
});

describe('RetryStreak', () => {
  it('starts at the first failure and ends only after a connection lasted stableConnectionMs', () => {
    const streak = new RetryStreak(30_000);
    expect(streak.since(T)).toBeUndefined();
    streak.failed(T);
    streak.failed(T + 1_000);
    expect(streak.since(T + 2_000)).toBe(T);
    // Connects and drops at once, again and again: still the same streak.
    for (let t = T + 2_000; t < T + 100_000; t += 5_000) {
      streak.connected(t);
      streak.disconnected(t + 100);
      streak.failed(t + 200);
    }
    expect(streak.since(T + 100_000)).toBe(T);
    streak.connected(T + 100_000);
    expect(streak.since(T + 129_999)).toBe(T);
    expect(streak.since(T + 130_000)).toBeUndefined();
    // A new failure after a stable connection starts a new streak.
    streak.disconnected(T + 200_000);
    streak.failed(T + 200_001);
    expect(streak.since(T + 200_002)).toBe(T + 200_001);
  });
});
