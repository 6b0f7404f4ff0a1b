/**
 * How the adapters are packaged. In source: an adapter reaches the library only through its public
 * entries, lib/index.ts, lib/wire.ts and lib/entry-*.ts (the build turns those imports into the
 * package's `ews-push-bridge`, `ews-push-bridge/wire`, `ews-push-bridge/errors`, …), and stateless
 * helpers (lib/logger.ts, lib/validate.ts, lib/model.ts: a bundled copy changes nothing). In the
 * built package:
 * each `ews-push-bridge/adapters/<name>` loads from ESM and CommonJS, imports `ews-push-bridge`
 * instead of carrying its own copy of the library (so `deferAck` and the error classes are the
 * ones the user's source and `instanceof` checks use), and the ews-javascript-api adapter does not
 * load ews-javascript-api until it subscribes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const ADAPTERS = ['push-callback', 'soap-forwarder', 'event-emitter', 'ews-javascript-api'] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('adapters in source', () => {
  it('reach the library only through its public entries (and stateless helpers: logger, validate, model)', () => {
    // The public entries become the package's own entries in the build; a bundled copy of a
    // stateless helper (resolveLogger, the option checks, lastWatermark) changes nothing.
    const entries = readdirSync(join(root, 'lib')).filter((file) => /^entry-[a-z]+\.ts$/.test(file)).map((file) => file.replace(/\.ts$/, '.js'));
    const allowed = ['index.js', 'wire.js', ...entries, 'logger.js', 'validate.js', 'model.js'].map((file) => join(root, 'lib', file));
    const offenders: string[] = [];
    for (const file of sourceFiles(join(root, 'adapters'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), match[1]!);
        const inside = relative(join(root, 'adapters'), target);
        if (!inside.startsWith('..')) continue;
        if (!allowed.includes(target)) offenders.push(`${relative(root, file)} imports ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('every file directly under adapters/ is a public adapter; helpers live in subfolders', () => {
    const top = readdirSync(join(root, 'adapters')).filter((f) => f.endsWith('.ts'));
    expect(top.sort()).toEqual(ADAPTERS.map((a) => `${a}.ts`).sort());
  });
});

const built = ADAPTERS.every((a) => existsSync(join(root, 'dist', 'adapters', `${a}.js`)) && existsSync(join(root, 'dist', 'adapters', `${a}.cjs`)));

function run(code: string, type: 'module' | 'commonjs'): string {
  return execFileSync(process.execPath, [type === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', code], { cwd: root, encoding: 'utf8', timeout: 120_000 }).trim();
}

describe.skipIf(!built)('adapters in the built package (npm test builds first)', () => {
  it('import the main entry instead of bundling a copy of the library', () => {
    for (const adapter of ADAPTERS) {
      const esm = readFileSync(join(root, 'dist', 'adapters', `${adapter}.js`), 'utf8');
      const cjs = readFileSync(join(root, 'dist', 'adapters', `${adapter}.cjs`), 'utf8');
      expect(esm).toMatch(/from "ews-push-bridge"/);
      expect(cjs).toMatch(/require\("ews-push-bridge"\)/);
      // The acknowledgement code and the error classes live in the library's entries only.
      for (const text of [esm, cjs]) {
        expect(text).not.toMatch(/function attachAck|class EwsBridgeError|class AckHandle/);
      }
    }
  });

  it('load from ES modules and CommonJS, sharing the main entry’s classes', () => {
    const esm = run(
      `import * as main from 'ews-push-bridge';
       import * as errors from 'ews-push-bridge/errors';
       import { pushCallback } from 'ews-push-bridge/adapters/push-callback';
       import { soapForwarder } from 'ews-push-bridge/adapters/soap-forwarder';
       import { pushEvents } from 'ews-push-bridge/adapters/event-emitter';
       import { pushBridge } from 'ews-push-bridge/adapters/ews-javascript-api';
       const { Subject } = await import('rxjs');
       const source = new Subject();
       const bridge = pushCallback(source, () => { throw new Error('down'); }, { statusFrequencyMinutes: 1, retryScheduleMs: [10, 60000], onError: () => {} });
       source.next({ subscriptionId: 's', moreEvents: false, events: [{ type: 'Status' }] });
       source.next({ subscriptionId: 's', moreEvents: false, events: [{ type: 'NewMail', timeStamp: '2024-01-01T00:00:00Z', itemId: { id: 'i' }, parentFolderId: { id: 'p' } }] });
       const error = await bridge.done.catch((e) => e);
       console.log([typeof soapForwarder, typeof pushEvents, typeof pushBridge].join(' '), error instanceof errors.EwsListenerError, error instanceof main.EwsBridgeError, error.code);`,
      'module',
    );
    expect(esm).toBe('function function function true true EWS_LISTENER_FAILED');
    const cjs = run(
      `const main = require('ews-push-bridge');
       const { pushCallback } = require('ews-push-bridge/adapters/push-callback');
       const { soapForwarder } = require('ews-push-bridge/adapters/soap-forwarder');
       const { pushEvents } = require('ews-push-bridge/adapters/event-emitter');
       const { pushBridge } = require('ews-push-bridge/adapters/ews-javascript-api');
       const lazy = !Object.keys(require.cache).some((k) => k.includes('node_modules/ews-javascript-api'));
       console.log([typeof pushCallback, typeof soapForwarder, typeof pushEvents, typeof pushBridge].join(' '), lazy, typeof main.deferAck);`,
      'commonjs',
    );
    expect(cjs).toBe('function function function function true function');
  });

  it('the ews-javascript-api adapter loads ews-javascript-api when it subscribes, and hands over its classes (CommonJS)', () => {
    const out = run(
      `const ews = require('ews-javascript-api');
       const { EwsSimulator } = require('ews-push-bridge/testing');
       const { pushBridge } = require('ews-push-bridge/adapters/ews-javascript-api');
       (async () => {
         const sim = await EwsSimulator.start({ timeScale: 0.001 });
         const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
         service.Url = new ews.Uri(sim.url);
         service.Credentials = new ews.WebCredentials('alice@contoso.com', 'x');
         let resolveEvent;
         const got = new Promise((resolve) => (resolveEvent = resolve));
         const sub = await pushBridge(service).SubscribeToPushNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], (args) => {
           if (args.Events.length > 0) resolveEvent(args.Events[0]);
           return 'OK';
         }, 1, null, ews.EventType.NewMail);
         while (!sim.subscriptions.some((s) => s.connected)) await new Promise((r) => setTimeout(r, 5));
         const delivered = sim.deliver('alice@contoso.com', { type: 'NewMail' });
         const event = await got;
         console.log(event instanceof ews.ItemEvent, event.EventType === ews.EventType.NewMail, event.ItemId.UniqueId === delivered.itemId.id);
         await sub.Unsubscribe();
         await sim.close();
       })().catch((e) => { console.log('failed', e); process.exitCode = 1; });`,
      'commonjs',
    );
    expect(out).toBe('true true true');
  });

  it.each(['module', 'commonjs'] as const)('its drop-in ExchangeService and StreamingSubscriptionConnection work from the built package (%s)', (type) => {
    const imports =
      type === 'module'
        ? `import * as ews from 'ews-javascript-api';
           import { EwsSimulator } from 'ews-push-bridge/testing';
           import { ExchangeService, StreamingSubscriptionConnection } from 'ews-push-bridge/adapters/ews-javascript-api';`
        : `const ews = require('ews-javascript-api');
           const { EwsSimulator } = require('ews-push-bridge/testing');
           const { ExchangeService, StreamingSubscriptionConnection } = require('ews-push-bridge/adapters/ews-javascript-api');`;
    const out = run(
      `${imports}
       (async () => {
       const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
       (async () => {
         const service = new ExchangeService(ews.ExchangeVersion.Exchange2013);
         service.Url = new ews.Uri(sim.url);
         service.Credentials = new ews.WebCredentials('alice@contoso.com', 'x');
         const subscription = await service.SubscribeToStreamingNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail);
         const connection = new StreamingSubscriptionConnection(service, 30);
         connection.AddSubscription(subscription);
         let resolveArgs;
         const got = new Promise((resolve) => (resolveArgs = resolve));
         connection.OnNotificationEvent.push((_sender, args) => resolveArgs(args));
         await connection.Open();
         while (!sim.subscriptions.some((s) => s.connected)) await new Promise((r) => setTimeout(r, 5));
         const delivered = sim.deliver('alice@contoso.com', { type: 'NewMail' });
         const args = await got;
         console.log(service instanceof ews.ExchangeService, subscription instanceof ews.StreamingSubscription, args instanceof ews.NotificationEventArgs, args.Events[0] instanceof ews.ItemEvent, args.Events[0].ItemId.UniqueId === delivered.itemId.id);
         connection.Close();
         await subscription.Unsubscribe();
       })().catch((e) => { console.log('failed', e); process.exitCode = 1; }).finally(() => sim.close());
       })();`,
      type,
    );
    expect(out).toBe('true true true true true');
  });
});
