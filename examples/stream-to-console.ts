/**
 * Prints a mailbox's notifications, and every connection lifecycle change, to the console.
 *
 * Run it (examples are TypeScript, run with tsx, a dev dependency of this repo):
 *
 *   npx tsx examples/stream-to-console.ts
 *       No URL: starts an embedded EwsSimulator, makes a few mailbox events happen (and one
 *       server-side close, to show the reconnect), prints them, and exits.
 *
 *   EWS_USERNAME=svc@contoso.com EWS_PASSWORD=… [EWS_MAILBOX=alice@contoso.com] \
 *     npx tsx examples/stream-to-console.ts https://mail.contoso.com/EWS/Exchange.asmx
 *       A real server, Basic auth (use TLS), optionally impersonating EWS_MAILBOX. Ctrl+C stops it
 *       (the subscription is removed on the server).
 *
 * In your own app, import from 'ews-push-bridge' (and 'ews-push-bridge/testing') instead of the
 * relative paths used here so the example runs from a checkout without a build.
 */
import { streamingNotifications, type PushNotification, type SourceLifecycleEvent } from '../lib/index.js';
import { EwsSimulator } from '../lib/testing/index.js';

function printNotification(n: PushNotification): void {
  for (const event of n.events) {
    const id = event.type === 'Status' ? '' : (event.itemId?.id ?? event.folderId?.id ?? '');
    const when = event.type === 'Status' ? '' : event.timeStamp;
    console.log(`[event] ${event.type.padEnd(15)} ${when} ${n.mailbox ?? ''} ${id.slice(0, 40)}`);
  }
}

function printLifecycle(e: SourceLifecycleEvent): void {
  switch (e.type) {
    case 'keep-alive':
      return;
    case 'gap':
      console.log(
        `[gap] ${e.reason}: ${e.from.toISOString()} → ${e.to.toISOString()}` +
          (e.eventsMayBeLost ? ' — events in this window may be missing (resync if you must not miss mail)' : ' — nothing lost'),
      );
      return;
    case 'retrying':
      console.log(`[retrying] ${e.reason} in ${e.delayMs} ms (${e.error.message})`);
      return;
    case 'disconnected':
      console.log(`[disconnected] ${e.reason}${e.error ? ` (${e.error.message})` : ''}`);
      return;
    default:
      console.log(`[${e.type}] ${'subscriptionId' in e ? e.subscriptionId.slice(0, 24) + '…' : ''}`);
  }
}

const url = process.argv[2];
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());

let simulator: EwsSimulator | undefined;
if (url === undefined) {
  simulator = await EwsSimulator.start();
  console.log(`No URL given: using an embedded EwsSimulator at ${simulator.url}`);
}
const mailbox = process.env['EWS_MAILBOX'];

const done = new Promise<void>((resolve) => {
  streamingNotifications({
    url: url ?? simulator?.url ?? '',
    auth: url
      ? { type: 'basic', username: process.env['EWS_USERNAME'] ?? '', password: process.env['EWS_PASSWORD'] ?? '' }
      : { type: 'basic', username: 'alice@contoso.com', password: 'any password works on the simulator' },
    ...(mailbox ? { mailbox } : {}),
    folders: ['inbox', 'calendar'],
    signal: stop.signal,
    onLifecycle: printLifecycle,
  }).subscribe({
    next: printNotification,
    error: (error: unknown) => {
      console.error('[error]', error instanceof Error ? `${error.name}: ${error.message}` : error);
      process.exitCode = 1;
      resolve();
    },
    complete: () => {
      console.log('[stopped]');
      resolve();
    },
  });
});

if (simulator) {
  const sim = simulator;
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  while (sim.openStreamingConnections === 0) await pause(10);
  sim.deliver('alice@contoso.com', { type: 'NewMail' });
  await pause(100);
  sim.deliver('alice@contoso.com', { type: 'Created', folder: 'calendar' });
  sim.deliver('alice@contoso.com', { type: 'Modified', folder: 'calendar' });
  await pause(100);
  console.log('(the server ends the connection, as Exchange does every ConnectionTimeout minutes)');
  sim.forceClose();
  sim.deliver('alice@contoso.com', { type: 'Moved', from: 'inbox', to: 'deleteditems' });
  await pause(300);
  stop.abort();
  await done;
  // Let the Unsubscribe reach the simulator before it goes.
  await pause(100);
  await sim.close();
} else {
  await done;
}
