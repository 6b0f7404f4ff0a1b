/**
 * The acknowledgement travels with the notification: deferAck across module copies (each published
 * entry point may bundle its own copy of the ack module, and an adapter's deferAck must find the
 * handle a source, another copy, attached), and a notification that still looks plain.
 */
import { describe, expect, it } from 'vitest';
import type { PushNotification } from '../lib/model.js';
import { silentLogger } from '../lib/logger.js';
import type * as ackModule from '../lib/sources/ack.js';
import { AckHandle, deferAck, attachAck } from '../lib/sources/ack.js';

describe('deferAck', () => {
  it('finds a handle attached by another copy of the module', async () => {
    // A query string makes the bundler load a second, independent instance of the module.
    // (A variable specifier: TypeScript does not resolve query strings.)
    const specifier = '../lib/sources/ack.js?second-copy';
    const copy = (await import(/* @vite-ignore */ specifier)) as typeof ackModule;
    expect(copy.deferAck).not.toBe(deferAck);
    const notification: PushNotification = { subscriptionId: 's', moreEvents: false, events: [] };
    const handle = new copy.AckHandle('manual', silentLogger);
    copy.attachAck(notification, handle);
    const ack = deferAck(notification);
    expect(handle.deferred).toBe(true);
    void ack();
    expect(handle.acked).toBe(true);
    handle.written();
    await expect(ack()).resolves.toBeUndefined();
  });

  it('leaves the notification plain: not enumerable, not serialized, not copied by a spread', () => {
    const notification: PushNotification = { subscriptionId: 's', moreEvents: false, events: [] };
    const handle = new AckHandle('manual', silentLogger);
    attachAck(notification, handle);
    expect(Object.keys(notification)).toEqual(['subscriptionId', 'moreEvents', 'events']);
    expect(JSON.stringify(notification)).toBe('{"subscriptionId":"s","moreEvents":false,"events":[]}');
    expect(notification).toStrictEqual({ subscriptionId: 's', moreEvents: false, events: [] });
    const copy = { ...notification };
    deferAck(copy);
    expect(handle.deferred).toBe(false);
    deferAck(notification);
    expect(handle.deferred).toBe(true);
    // Nothing global keeps it: the handle lives and dies with the notification.
    expect(Object.getOwnPropertySymbols(globalThis).map(String)).not.toContain('Symbol(ews-push-bridge.ack-handles)');
  });

  it('ack resolves when written, rejects (handled) when the write failed, and is idempotent', async () => {
    const n1: PushNotification = { subscriptionId: 's', moreEvents: false, events: [] };
    const h1 = new AckHandle('manual', silentLogger);
    attachAck(n1, h1);
    const ack1 = deferAck(n1);
    const first = ack1();
    expect(ack1()).toBe(first);
    h1.written();
    await expect(first).resolves.toBeUndefined();

    const n2: PushNotification = { subscriptionId: 's', moreEvents: false, events: [] };
    const h2 = new AckHandle('manual', silentLogger);
    attachAck(n2, h2);
    h2.failed(new Error('disk full'));
    // Never awaited by anyone: must not become an unhandled rejection (vitest fails the run if it does).
    void deferAck(n2)();
    await expect(deferAck(n2)()).rejects.toThrow('disk full');
  });
});
