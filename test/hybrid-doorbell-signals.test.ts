/**
 * The hybrid source reports its streaming doorbell (the fast path), wrapped as
 * `{ type: 'doorbell', event }` next to the pull side's own signals: a GetStreamingEvents cut by a
 * simulator fault shows up as a doorbell `disconnected` and a doorbell `connected` again, while the
 * pull side reports nothing; a doorbell that gives up shows up as `failed` with its restart delay.
 * Consumers that track the pull side by `type` (push-callback) never mistake the doorbell for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pushCallback } from '../adapters/push-callback.js';
import { hybridNotifications, hybridSignals } from '../lib/sources/hybrid.js';
import type { DoorbellEvent, SourceLifecycleEvent } from '../lib/sources/lifecycle.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { FAST, runSource, sleep, type SourceRun } from './helpers/auth-sources.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;

let sim: EwsSimulator | undefined;
let run: SourceRun | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  run?.stop();
  run = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sleep(20);
  await sim?.close();
  sim = undefined;
});

function doorbell(r: SourceRun): DoorbellEvent['event'][] {
  return r.lifecycle('doorbell').map((s) => (s as DoorbellEvent).event);
}

describe('hybridSignals: the doorbell’s lifecycle', () => {
  it('reports the doorbell’s subscription and connection, wrapped, next to the pull side’s', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    run = runSource('hybrid', sim, { auth: AUTH, pollIntervalMs: 60_000 });
    await run.until(() => doorbell(run!).some((e) => e.type === 'connected'), 'the doorbell connected');
    await run.until(() => run!.lifecycle('connected').length > 0, 'the pull side connected');

    const streamingId = sim.subscriptions.find((s) => s.kind === 'streaming')?.id;
    const pullId = sim.subscriptions.find((s) => s.kind === 'pull')?.id;
    expect(streamingId).toBeDefined();
    expect(doorbell(run)).toContainEqual(expect.objectContaining({ type: 'subscribed', subscriptionId: streamingId }));
    expect(doorbell(run)).toContainEqual(expect.objectContaining({ type: 'connected', subscriptionId: streamingId }));
    // Unwrapped signals are the pull side's only.
    for (const s of run.lifecycle()) {
      if (s.type !== 'doorbell' && 'subscriptionId' in s) expect(s.subscriptionId).toBe(pullId);
    }
  });

  it('a GetStreamingEvents cut mid-envelope: doorbell disconnected (connection-error) and connected again; the pull side reports nothing', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    run = runSource('hybrid', sim, { auth: AUTH, pollIntervalMs: 60_000 });
    await run.until(() => doorbell(run!).some((e) => e.type === 'connected'), 'the doorbell connected');
    // The pull side's own subscribed/connected may come after the doorbell's: count from after them.
    await run.until(() => run!.lifecycle('connected').length > 0, 'the pull side connected');
    const pullSignalsBefore = run.lifecycle().filter((s) => s.type !== 'doorbell' && s.type !== 'keep-alive').length;

    sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => doorbell(run!).filter((e) => e.type === 'connected').length >= 2, 'the doorbell back');
    await run.until(() => run!.received.includes(seq), 'the event, through the pull side');

    const events = doorbell(run);
    const cut = events.findIndex((e) => e.type === 'disconnected');
    expect(events[cut]).toMatchObject({ type: 'disconnected', reason: 'connection-error' });
    expect(events.slice(cut + 1).some((e) => e.type === 'connected')).toBe(true);
    // The pull side did not lose its connection: no disconnected/retrying/gap of its own.
    const pullSignalsAfter = run.lifecycle().filter((s) => s.type !== 'doorbell' && s.type !== 'keep-alive');
    expect(pullSignalsAfter.filter((s) => s.type === 'disconnected' || s.type === 'retrying')).toEqual([]);
    expect(pullSignalsAfter.length).toBe(pullSignalsBefore);
    expect(run.error).toBeUndefined();
  });

  it('a doorbell that gives up: `failed` with the error and doorbellRestartMs; the pull side carries on', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    run = runSource('hybrid', sim, { auth: AUTH, pollIntervalMs: 200, doorbellRestartMs: 5_000 });
    await run.until(() => doorbell(run!).some((e) => e.type === 'connected'), 'the doorbell connected');
    // Every new doorbell connection is refused (401: fatal for a streaming source).
    sim.inject({ type: 'http-401', operation: 'GetStreamingEvents', times: Infinity });
    sim.forceClose();
    await run.until(() => doorbell(run!).some((e) => e.type === 'failed'), 'the doorbell failed');
    const failed = doorbell(run).find((e) => e.type === 'failed');
    expect(failed).toMatchObject({ type: 'failed', restartInMs: 5_000, error: expect.objectContaining({ code: 'EWS_AUTH_FAILED' }) });
    expect(failed?.at).toBeInstanceOf(Date);
    // The pull side carries on: the hybrid source is fine.
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event, by the poll');
    expect(run.error).toBeUndefined();
  });
});

describe('consumers of the doorbell signals', () => {
  it('hybridNotifications hands them to onLifecycle', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    const seen: SourceLifecycleEvent[] = [];
    const subscription = hybridNotifications({ url: sim.url, auth: AUTH, ...FAST, pollIntervalMs: 60_000, onLifecycle: (e) => seen.push(e) }).subscribe();
    cleanups.push(() => subscription.unsubscribe());
    await until(() => seen.some((e) => e.type === 'doorbell' && e.event.type === 'connected'), 'a doorbell connected signal');
    sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await until(() => seen.some((e) => e.type === 'doorbell' && e.event.type === 'disconnected'), 'a doorbell disconnected signal');
  });

  it('push-callback on hybridSignals: the handler sees the pull subscription only, across a doorbell cut', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    // Per event, not per call: one GetEvents may carry both mails in one notification (the wake
    // after the doorbell's reconnect can race the second delivery).
    const handled: string[] = [];
    const newMails: number[] = [];
    const lifecycle: SourceLifecycleEvent[] = [];
    const bridge = pushCallback(
      hybridSignals({ url: sim.url, auth: AUTH, ...FAST, pollIntervalMs: 60_000 }),
      (n) => {
        handled.push(n.subscriptionId);
        for (const e of n.events) if (e.type === 'NewMail') newMails.push(1);
        return 'OK';
      },
      { onLifecycle: (e) => lifecycle.push(e) },
    );
    cleanups.push(() => bridge.close());
    await until(() => lifecycle.some((e) => e.type === 'doorbell' && e.event.type === 'connected'), 'the doorbell connected');
    await until(() => sim!.subscriptions.length === 2, 'both subscriptions');
    const pullId = sim.subscriptions.find((s) => s.kind === 'pull')!.id;
    sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await until(() => lifecycle.filter((e) => e.type === 'doorbell' && e.event.type === 'connected').length >= 2, 'the doorbell back');
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await until(() => newMails.length >= 2, 'both NewMail events handled');
    expect(newMails).toHaveLength(2);
    expect(new Set(handled)).toEqual(new Set([pullId]));
    expect(bridge.closed).toBe(false);
  });
});
