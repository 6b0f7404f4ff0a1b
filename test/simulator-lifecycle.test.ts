/**
 * EwsSimulator.close() leaves nothing behind — no timer, no socket, no server handle, no pending
 * promise — whatever was going on: open streams, a trickling answer, a silence, a push POST in
 * flight, pull expiry timers, a half-done NTLM handshake.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EwsSimulator } from '../lib/testing/index.js';
import { call, envelope, firstMessage, openStream, post, req } from './helpers/ews-http.js';
import { until } from './helpers/until.js';

/** Handles that keep a process alive, by type (timers, TCP sockets and servers). */
function liveHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout' || kind === 'TCPSocketWrap' || kind === 'TCPServerWrap') counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** The handles above `baseline`, once there are none, or at the hang guard of {@link until} (then the caller's expect shows them). */
async function settle(baseline: Record<string, number>): Promise<Record<string, number>> {
  const extra = (): [string, number][] => Object.entries(liveHandles()).filter(([k, v]) => v > (baseline[k] ?? 0));
  await until(() => extra().length === 0, 'the handles to return to the baseline', { intervalMs: 20 }).catch(() => undefined);
  return Object.fromEntries(extra());
}

describe('EwsSimulator.close()', () => {
  it('leaves no timer, socket or server behind, whatever was in progress', async () => {
    // A push listener that never answers, so a POST is in flight at close().
    const listener = createServer(() => {});
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const listenerUrl = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/`;
    await new Promise((r) => setTimeout(r, 50));
    const baseline = liveHandles();

    const sim = await EwsSimulator.start({ keepAliveIntervalMs: 15 });
    const streaming = firstMessage((await call(sim.url, req.subscribeStreaming())).envelope) as { subscriptionId: string };
    await call(sim.url, req.subscribePull({ timeout: 1440 }));
    await call(sim.url, req.subscribePush({ url: listenerUrl, statusFrequency: 1440 }));
    const streams = [openStream(sim.url, [streaming.subscriptionId]), openStream(sim.url, [streaming.subscriptionId])];
    sim.deliver('alice@contoso.com', { type: 'NewMail' }); // → a push POST that hangs
    sim.inject({ type: 'trickle', operation: 'Subscribe', bytesPerWrite: 1, intervalMs: 50 });
    const trickling = post(sim.url, envelope(req.subscribePull())).catch((err: unknown) => err);
    sim.inject({ type: 'silence', operation: 'GetEvents', forMs: 60_000 });
    const silent = post(sim.url, envelope(req.getEvents('x', 'AAAAAGUhAAAAAAAAAQ==')), {}).catch((err: unknown) => err);
    const ntlmHalfDone = post(sim.url, envelope(req.subscribePull()), { auth: 'NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=' });
    await ntlmHalfDone;
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.pendingTimers).toBeGreaterThan(0);
    expect(sim.openStreamingConnections).toBe(1); // the second stream took the subscription over

    await sim.close();
    expect(sim.pendingTimers).toBe(0);
    expect(sim.openStreamingConnections).toBe(0);
    // Clients see their answers end (or break), rather than hang.
    for (const s of streams) await s.finished();
    await Promise.all([trickling, silent]);
    expect(await settle(baseline)).toEqual({});

    listener.closeAllConnections();
    await new Promise((r) => listener.close(r));
  });

  it('refuses requests that arrive while closing, and start() works again afterwards', async () => {
    const sim = await EwsSimulator.start();
    const closing = sim.close();
    await closing;
    await expect(post(sim.url, envelope(req.subscribePull()))).rejects.toThrow(/ECONNREFUSED/);
    const again = await EwsSimulator.start();
    expect(again.url).not.toBe('');
    await again.close();
  });
});
