/**
 * examples/legacy-listener end to end against EwsSimulator: the 2015 push listener, run unchanged
 * behind the soap-forwarder, and the same app migrated to push-callback and to the
 * ews-javascript-api adapter. Each must file every delivered event (checked by the simulator's
 * per-mailbox sequence numbers, read back from the change keys the app filed), in order, and end
 * the EWS subscription when the app answers Unsubscribe. As a reference, the untouched 2015 app
 * (ews-javascript-api push subscription + listener) against the simulator's own push delivery.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startPushCallbackApp } from '../examples/legacy-listener/app-push-callback.js';
import { subscribe as subscribeEwsJsApp } from '../examples/legacy-listener/app-ews-javascript-api.js';
import { Crm, type MailEvent } from '../examples/legacy-listener/crm.js';
import { startListener } from '../examples/legacy-listener/listener-2015.js';
import { subscribe as subscribe2015 } from '../examples/legacy-listener/subscribe-2015.js';
import { subscribe as subscribeBridged } from '../examples/legacy-listener/subscribe-bridged.js';
import { EwsSimulator, sequenceOf, type DeliveredEvent, type SimulatedEvent } from '../lib/testing/index.js';
import { until } from './helpers/until.js';

const USER = 'crm-service@contoso.com';
const PASSWORD = 'legacy-app-password';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, users: { [USER]: PASSWORD } });
  cleanups.push(() => sim.close());
  return sim;
}

/** The 2015 listener on 127.0.0.1:0, exactly as the app starts it (callback style). */
async function listen(crm: Crm): Promise<string> {
  const server = await new Promise<Server>((resolve) => startListener(crm, 0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/ExchangePush/Listener.asmx`;
}

/** The sequence number of a filed event, from the change key the app filed (see `sequenceOf`). */
function seqOf(e: MailEvent): number | undefined {
  const id = { id: e.id, ...(e.changeKey === undefined ? {} : { changeKey: e.changeKey }) };
  return sequenceOf({ type: 'Created', timeStamp: '2024-01-01T00:00:00Z', parentFolderId: { id: 'x' }, ...(e.kind === 'item' ? { itemId: id } : { folderId: id }) });
}

/** What happens in the inbox: one of each item event the app subscribes to, and a burst of mail. */
const SCRIPT: readonly SimulatedEvent[] = [
  { type: 'NewMail' },
  { type: 'Created' },
  { type: 'Modified' },
  { type: 'NewMail' },
  { type: 'Copied', from: 'inbox', to: 'inbox' },
  { type: 'Moved', from: 'inbox', to: 'inbox' },
  { type: 'Deleted' },
  ...Array.from({ length: 20 }, () => ({ type: 'NewMail' }) as const),
];

/** Runs the script and checks the CRM filed every event, in order, with its type and kind. */
async function deliverAndCheck(sim: EwsSimulator, crm: Crm, app: string): Promise<DeliveredEvent[]> {
  const delivered = SCRIPT.map((e) => sim.deliver(USER, e));
  await until(() => crm.filed.length >= delivered.length, `${app}: every event filed (${crm.filed.length}/${delivered.length})`);
  expect(crm.filed.map(seqOf)).toEqual(delivered.map((d) => d.seq));
  expect(crm.filed.map((e) => e.type)).toEqual(delivered.map((d) => d.type));
  expect(crm.filed.every((e) => e.kind === 'item')).toBe(true);
  expect(new Set(crm.filed.map((e) => e.subscriptionId)).size).toBe(1);
  return delivered;
}

/** The app offboards the mailbox: its next answer is Unsubscribe, which must end the EWS subscription. */
async function offboard(sim: EwsSimulator, crm: Crm): Promise<void> {
  crm.offboarded = true;
  sim.deliver(USER, { type: 'NewMail' });
  await until(() => sim.subscriptions.length === 0, 'the EWS subscription removed');
}

describe('examples/legacy-listener', () => {
  it('the 2015 listener, unchanged, behind the soap-forwarder: every event arrives; Unsubscribe ends the EWS subscription', async () => {
    const sim = await simulator();
    const crm = new Crm();
    const listenerUrl = await listen(crm);
    const forwarder = subscribeBridged(sim.url, USER, PASSWORD, listenerUrl);
    cleanups.push(() => forwarder.close());
    await until(() => sim.subscriptions.some((s) => s.connected), 'the streaming connection');
    expect(sim.subscriptions[0]!.kind).toBe('streaming');
    await deliverAndCheck(sim, crm, 'forwarder');
    expect(crm.filed[0]!.subscriptionId).toBe(sim.subscriptions[0]!.id);
    await offboard(sim, crm);
    await expect(forwarder.done).resolves.toMatchObject({ reason: 'unsubscribed' });
    expect(sim.requests.some((r) => r.operation === 'Unsubscribe')).toBe(true);
  });

  it('migrated to push-callback: every event arrives; Unsubscribe ends the EWS subscription', async () => {
    const sim = await simulator();
    const crm = new Crm();
    const app = startPushCallbackApp(crm, sim.url, USER, PASSWORD);
    cleanups.push(() => app.close());
    await until(() => sim.subscriptions.some((s) => s.connected), 'the streaming connection');
    await deliverAndCheck(sim, crm, 'push-callback');
    await offboard(sim, crm);
    await expect(app.done).resolves.toMatchObject({ reason: 'unsubscribed' });
  });

  it('migrated to the ews-javascript-api adapter: every event arrives; Unsubscribe ends the EWS subscription', async () => {
    const sim = await simulator();
    const crm = new Crm();
    const subscription = await subscribeEwsJsApp(crm, sim.url, USER, PASSWORD);
    cleanups.push(() => subscription.Unsubscribe());
    expect(subscription.Id).toBe(sim.subscriptions[0]!.id);
    await until(() => sim.subscriptions.some((s) => s.connected), 'the streaming connection');
    await deliverAndCheck(sim, crm, 'ews-javascript-api');
    await offboard(sim, crm);
    await expect(subscription.done).resolves.toMatchObject({ reason: 'unsubscribed' });
  });

  it('reference: the untouched 2015 app with push from the simulator files the same events', async () => {
    const sim = await simulator();
    const crm = new Crm();
    const listenerUrl = await listen(crm);
    const subscription = await subscribe2015(sim.url, USER, PASSWORD, listenerUrl);
    expect(sim.subscriptions[0]!.kind).toBe('push');
    expect(subscription.Id).toBe(sim.subscriptions[0]!.id);
    await deliverAndCheck(sim, crm, 'push');
    await offboard(sim, crm);
  });
});
