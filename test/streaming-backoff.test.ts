import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { firstValueFrom, toArray } from 'rxjs';
import {
  EwsAuthError,
  EwsConnectionError,
  EwsHeartbeatTimeoutError,
  EwsHttpError,
  EwsParseError,
  EwsResponseError,
  EwsSoapFaultError,
  type EwsErrorDetails,
} from '../lib/errors.js';
import { responseCodeInfo } from '../lib/ews/response-codes.js';
import { DEFAULT_RETRY_OPTIONS, planFor, withRetry, type RetryNotice } from '../lib/sources/backoff.js';
import { MAX_TIMER_MS } from '../lib/validate.js';
import { streamingNotifications, type StreamingOptions } from '../lib/sources/streaming.js';

/** The details the wire layer builds for a code: its `action` from the response-code table. */
function classified(details: Omit<EwsErrorDetails, 'action'>): EwsErrorDetails {
  return { ...details, action: responseCodeInfo(details.responseCode).action };
}

describe('planFor: what each failure means', () => {
  it('follows the response-code table and the error types', () => {
    expect(planFor(new EwsSoapFaultError('a:ErrorServerBusy', classified({ responseCode: 'ErrorServerBusy', backOffMs: 1234 })))).toEqual({
      kind: 'server-delay',
      reason: 'server-busy',
      delayMs: 1234,
    });
    expect(planFor(new EwsSoapFaultError('a:ErrorServerBusy', classified({ responseCode: 'ErrorServerBusy' })))).toEqual({ kind: 'retry', reason: 'server-busy' });
    for (const code of ['ErrorSubscriptionNotFound', 'ErrorInvalidSubscription', 'ErrorExpiredSubscription', 'ErrorReadEventsFailed']) {
      expect(planFor(new EwsResponseError(classified({ responseCode: code })))).toEqual({ kind: 'resubscribe', reason: 'subscription-lost', backOff: false });
    }
    expect(planFor(new EwsResponseError(classified({ responseCode: 'ErrorMailboxMoveInProgress' })))).toMatchObject({ kind: 'resubscribe', backOff: true });
    expect(planFor(new EwsResponseError(classified({ responseCode: 'ErrorNewEventStreamConnectionOpened' }))).kind).toBe('connection-taken');
    expect(planFor(new EwsResponseError(classified({ responseCode: 'ErrorAccessDenied' }))).kind).toBe('fatal');
    expect(planFor(new EwsResponseError(classified({ responseCode: 'ErrorSomethingNew' }))).kind).toBe('retry');
    expect(planFor(new EwsHttpError(503, { retryAfterMs: 2000 }))).toEqual({ kind: 'server-delay', reason: 'server-busy', delayMs: 2000 });
    expect(planFor(new EwsHttpError(503))).toEqual({ kind: 'retry', reason: 'server-busy' });
    expect(planFor(new EwsHttpError(502))).toEqual({ kind: 'retry', reason: 'server-error' });
    expect(planFor(new EwsHttpError(404)).kind).toBe('fatal');
    expect(planFor(new EwsAuthError(401)).kind).toBe('fatal');
    expect(planFor(new EwsHeartbeatTimeoutError(90_000))).toEqual({ kind: 'retry', reason: 'heartbeat-timeout' });
    expect(planFor(new EwsConnectionError('reset'))).toEqual({ kind: 'retry', reason: 'connection-error' });
    expect(planFor(new EwsParseError('bad xml'))).toEqual({ kind: 'retry', reason: 'server-error' });
    expect(planFor(new TypeError('bug')).kind).toBe('fatal');
  });
});

describe('withRetry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** An attempt function that fails with the given errors in turn, then succeeds. */
  function failing(errors: unknown[]) {
    const calledAt: number[] = [];
    const fn = (): Promise<string> => {
      calledAt.push(Date.now());
      const next = errors.shift();
      return next === undefined ? Promise.resolve('ok') : Promise.reject(next);
    };
    return { fn, calledAt };
  }

  it('waits exactly BackOffMilliseconds and Retry-After, adding nothing', async () => {
    const { fn, calledAt } = failing([
      new EwsSoapFaultError('a:ErrorServerBusy', classified({ responseCode: 'ErrorServerBusy', backOffMs: 5000 })),
      new EwsHttpError(503, { retryAfterMs: 7000 }),
    ]);
    const notices: RetryNotice[] = [];
    const result = withRetry(fn, {
      retry: DEFAULT_RETRY_OPTIONS,
      signal: new AbortController().signal,
      plan: planFor,
      onRetry: (n) => notices.push(n),
    });
    await vi.advanceTimersByTimeAsync(4999);
    expect(calledAt).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calledAt).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(6999);
    expect(calledAt).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await expect(result).resolves.toBe('ok');
    expect(calledAt.map((t) => t - (calledAt[0] ?? 0))).toEqual([0, 5000, 12_000]);
    expect(notices.map((n) => [n.delayMs, n.serverRequested])).toEqual([
      [5000, true],
      [7000, true],
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never waits less than the back-off floor after a failure, whatever the server asks, and the floor grows', async () => {
    const zero = () => new EwsHttpError(503, { retryAfterMs: 0 });
    const { fn, calledAt } = failing([zero(), zero(), zero(), new EwsSoapFaultError('a:ErrorServerBusy', classified({ responseCode: 'ErrorServerBusy', backOffMs: 0 }))]);
    const notices: RetryNotice[] = [];
    const result = withRetry(fn, {
      retry: { ...DEFAULT_RETRY_OPTIONS, minDelayMs: 100, maxDelayMs: 250, jitter: false },
      signal: new AbortController().signal,
      plan: planFor,
      onRetry: (n) => notices.push(n),
    });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    // 100 · 2^n, capped at maxDelayMs: a server's "0" is no reason to ask again at once.
    expect(notices.map((n) => [n.delayMs, n.serverRequested])).toEqual([
      [100, true],
      [200, true],
      [250, true],
      [250, true],
    ]);
    expect(calledAt.slice(1).map((t, i) => t - (calledAt[i] ?? 0))).toEqual([100, 200, 250, 250]);
  });

  it('clamps a server wait above maxServerDelayMs (logged), and never hands a timer more than 2^31 − 1 ms', async () => {
    const warned: unknown[] = [];
    const logger = { debug() {}, info() {}, warn: (_m: string, fields?: unknown) => warned.push(fields), error() {} };
    const { fn, calledAt } = failing([new EwsHttpError(503, { retryAfterMs: 99_999_999_999_000 }), new EwsHttpError(503, { retryAfterMs: Number.POSITIVE_INFINITY })]);
    const notices: RetryNotice[] = [];
    const result = withRetry(fn, {
      retry: { ...DEFAULT_RETRY_OPTIONS, maxServerDelayMs: 5_000 },
      signal: new AbortController().signal,
      plan: planFor,
      onRetry: (n) => notices.push(n),
      logger,
    });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    expect(notices.map((n) => n.delayMs)).toEqual([5_000, 5_000]);
    expect(calledAt.slice(1).map((t, i) => t - (calledAt[i] ?? 0))).toEqual([5_000, 5_000]);
    expect(warned[0]).toMatchObject({ requestedMs: 99_999_999_999_000, maxServerDelayMs: 5_000 });
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
  });

  it('backs off exponentially with jitter, capped, and announces the real delay', async () => {
    const errors = Array.from({ length: 6 }, () => new EwsConnectionError('refused'));
    const { fn, calledAt } = failing(errors);
    const notices: RetryNotice[] = [];
    const random = vi.fn().mockReturnValueOnce(0).mockReturnValueOnce(0.5).mockReturnValue(0.999);
    const result = withRetry(fn, {
      retry: { ...DEFAULT_RETRY_OPTIONS, minDelayMs: 100, maxDelayMs: 1000, factor: 2 },
      signal: new AbortController().signal,
      plan: planFor,
      onRetry: (n) => notices.push(n),
      random,
    });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    // base 100, 200, 400, 800, 1000, 1000 × (1 + r), capped at 1000
    expect(notices.map((n) => n.delayMs)).toEqual([100, 300, 800, 1000, 1000, 1000]);
    const gaps = calledAt.slice(1).map((t, i) => t - (calledAt[i] ?? 0));
    expect(gaps).toEqual([100, 300, 800, 1000, 1000, 1000]);
  });

  it('resubscribes at once the first time in a streak, then backs off', async () => {
    const lost = () => new EwsResponseError(classified({ responseCode: 'ErrorSubscriptionNotFound' }));
    const { fn, calledAt } = failing([lost(), lost(), lost()]);
    const result = withRetry(fn, {
      retry: { ...DEFAULT_RETRY_OPTIONS, minDelayMs: 100, jitter: false },
      signal: new AbortController().signal,
      plan: planFor,
      onRetry: () => {},
    });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    const gaps = calledAt.slice(1).map((t, i) => t - (calledAt[i] ?? 0));
    expect(gaps).toEqual([0, 100, 200]);
  });

  it('stops at a fatal error and after maxAttempts', async () => {
    const fatal = new EwsAuthError(401);
    const first = failing([fatal]);
    const onRetry = vi.fn();
    await expect(withRetry(first.fn, { retry: DEFAULT_RETRY_OPTIONS, signal: new AbortController().signal, plan: planFor, onRetry })).rejects.toBe(
      fatal,
    );
    expect(onRetry).not.toHaveBeenCalled();

    const last = new EwsConnectionError('third');
    const second = failing([new EwsConnectionError('first'), new EwsConnectionError('second'), last, new EwsConnectionError('never')]);
    const result = withRetry(second.fn, {
      retry: { ...DEFAULT_RETRY_OPTIONS, minDelayMs: 10, maxAttempts: 3 },
      signal: new AbortController().signal,
      plan: planFor,
      onRetry,
    });
    const settled = result.catch((error: unknown) => error);
    await vi.runAllTimersAsync();
    expect(await settled).toBe(last);
    expect(second.calledAt).toHaveLength(3);
    expect(onRetry).toHaveBeenCalledTimes(2);
  });

  it('aborts a pending wait at once and leaves no timer', async () => {
    const controller = new AbortController();
    const { fn, calledAt } = failing([new EwsSoapFaultError('a:ErrorServerBusy', classified({ responseCode: 'ErrorServerBusy', backOffMs: 60_000 }))]);
    const result = withRetry(fn, { retry: DEFAULT_RETRY_OPTIONS, signal: controller.signal, plan: planFor, onRetry: () => {} });
    const settled = result.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort('stop');
    expect(await settled).toBe('stop');
    expect(calledAt).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('streamingNotifications option validation', () => {
  const url = 'http://127.0.0.1:9/EWS/Exchange.asmx';
  const cases: [Partial<StreamingOptions> & Record<string, unknown>, RegExp][] = [
    [{ connectionTimeoutMinutes: 0 }, /^connectionTimeoutMinutes must be 1–30 \(got 0\)$/],
    [{ connectionTimeoutMinutes: 31 }, /^connectionTimeoutMinutes must be 1–30 \(got 31\)$/],
    [{ connectionTimeoutMinutes: 1.5 }, /^connectionTimeoutMinutes must be 1–30 \(got 1.5\)$/],
    [{ heartbeatTimeoutMs: 0 }, /^heartbeatTimeoutMs must be/],
    [{ heartbeatTimeoutMs: Infinity }, /^heartbeatTimeoutMs must be/],
    [{ requestTimeoutMs: -1 }, /^requestTimeoutMs must be/],
    [{ unsubscribeTimeoutMs: Number.NaN }, /^unsubscribeTimeoutMs must be/],
    [{ url: 'ftp://example.com/' }, /^url must be an absolute http or https URL \(got a string\)$/],
    [{ url: 'http://u:p@127.0.0.1/EWS/Exchange.asmx' }, /^url must not contain credentials/],
    [{ auth: { type: 'basic', username: '', password: 'x' } as never }, /^auth\.username must be/],
    [{ auth: { type: 'kerberos' } as never }, /^auth\.type must be/],
    [{ mailbox: 'a@b.c\r\nX-Evil: 1' }, /^mailbox must be/],
    [{ folders: ['Inbox'] }, /folders\[0\]/],
    [{ eventTypes: ['NewMail', 'Bogus' as never] }, /eventTypes\[1\]/],
    [{ retry: { factor: 0.5 } }, /^retry\.factor must be/],
    [{ retry: { maxDelayMs: 10, minDelayMs: 100 } }, /^retry\.maxDelayMs must be/],
    [{ retry: { maxAttempts: 0 } }, /^retry\.maxAttempts must be/],
    [{ retry: { minDelayMs: 0 } }, /^retry\.minDelayMs must be a positive number/],
    [{ retry: { maxServerDelayMs: 0 } }, /^retry\.maxServerDelayMs must be/],
    [{ retry: { minConnectionLifetimeMs: -1 } }, /^retry\.minConnectionLifetimeMs must be/],
    [{ onConnectionTaken: 'ignore' as never }, /^onConnectionTaken must be "error" or "reconnect" \(got "ignore"\)$/],
    // A header value may be a credential: the message names the header, never its value.
    [{ headers: { 'X-Api-Key': 'sk-Secret123\r\nX-Evil: 1' } }, /^headers\["X-Api-Key"\] must be a string without control characters \(got a string with control characters\)$/],
    [{ logger: {} as never }, /^logger must have/],
    [{ recovery: 5 as never }, /^recovery must be an object \(got 5\)$/],
  ];
  it.each(cases)('errors the Observable, naming the option: %o', async (bad, message) => {
    const error = await firstValueFrom(streamingNotifications({ url, ...bad } as StreamingOptions).pipe(toArray())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(['TypeError', 'RangeError']).toContain((error as Error).name);
    expect((error as Error).message).toMatch(message);
  });

  it('never echoes a secret in a validation error', async () => {
    const error = (await firstValueFrom(
      streamingNotifications({ url: 'http://svc:Pa55-w0rd@127.0.0.1/EWS/Exchange.asmx' }).pipe(toArray()),
    ).catch((e: unknown) => e)) as Error;
    expect(error.message).not.toContain('Pa55-w0rd');
  });
});
