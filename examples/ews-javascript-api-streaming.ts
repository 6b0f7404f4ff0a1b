/**
 * An ews-javascript-api app that already streams, moved to the bridge by one import: the
 * `ExchangeService` and `StreamingSubscriptionConnection` below come from
 * 'ews-push-bridge/adapters/ews-javascript-api'; everything else is ews-javascript-api's, and the
 * handlers get its own NotificationEventArgs / ItemEvent objects. Against the simulator, the server
 * ends the stream, throttles the reconnect and loses the subscription — and the app's handler still
 * sees every new mail once (the lost subscription's window is reported to `OnGap`). Then a pull
 * subscription, whose `GetEvents()` loses nothing across a lost subscription either.
 *
 * Run it from a checkout (tsx and ews-javascript-api are dev dependencies of this repo):
 *
 *   npx tsx examples/ews-javascript-api-streaming.ts
 *
 * In your app, import from 'ews-push-bridge/adapters/ews-javascript-api' instead of the relative path.
 */
import assert from 'node:assert/strict';
import { EventType, ExchangeVersion, FolderId, ItemEvent, Uri, WebCredentials, WellKnownFolderName } from 'ews-javascript-api';
// The one changed line (was: import { ExchangeService, StreamingSubscriptionConnection } from 'ews-javascript-api').
import { ExchangeService, StreamingSubscriptionConnection } from '../adapters/ews-javascript-api.js';
import { EwsSimulator } from '../lib/testing/index.js';

// A simulator stands in for Exchange; timeScale makes the 30-minute connection lifetime last 1.8 s.
const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
const MAILBOX = 'alice@contoso.com';

// --- the app, as it was -------------------------------------------------------------------
const service = new ExchangeService(ExchangeVersion.Exchange2013);
service.Credentials = new WebCredentials(MAILBOX, 'anything');
service.Url = new Uri(sim.url);

const newMail: string[] = [];
const subscription = await service.SubscribeToStreamingNotifications([new FolderId(WellKnownFolderName.Inbox)], EventType.NewMail);
const connection = new StreamingSubscriptionConnection(service, 30);
connection.AddSubscription(subscription);
connection.OnNotificationEvent.push((_sender, args) => {
  for (const event of args.Events) if (event instanceof ItemEvent) newMail.push(event.ItemId.UniqueId);
});
connection.OnSubscriptionError.push((_sender, args) => console.error('subscription error:', args.Exception.Message));
connection.OnDisconnect.push((sender: StreamingSubscriptionConnection) => {
  if (!sender.IsOpen) void sender.Open(); // what apps did; harmless now: the bridge has reopened already
});
// New with the bridge (optional): windows in which the server may have dropped events.
let gaps = 0;
connection.OnGap.push(() => gaps++);
void connection.Open();
// -------------------------------------------------------------------------------------------

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; !condition(); await pause(10)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}
await until(() => sim.openStreamingConnections === 1, 'the stream');

const made = [sim.deliver(MAILBOX, { type: 'NewMail' })];
sim.forceClose(); // the server ends the stream…
sim.inject({ type: 'server-busy', backOffMs: 200, operation: 'GetStreamingEvents' }); // …and throttles the reconnect
made.push(sim.deliver(MAILBOX, { type: 'NewMail' }));
await until(() => newMail.length === 2, 'the mail made across the close and the throttled reconnect');
sim.inject({ type: 'forget-subscriptions' }); // the server loses the subscription: the bridge makes a new one
await until(() => gaps === 1 && sim.openStreamingConnections === 1, 'the new subscription');
made.push(sim.deliver(MAILBOX, { type: 'NewMail' }));
await until(() => newMail.length === 3, 'the mail made after it');
assert.deepEqual(newMail, made.map((d) => d.itemId?.id));
console.log(`streaming: ${newMail.length} of ${made.length} new mails, once each, across a close, a throttled reconnect and a lost subscription (${gaps} gap reported)`);

// Pull: the same app style, GetEvents() on a timer; the watermark carries it across a lost subscription.
// (Optional: how often the bridge asks Exchange in the background; default 10 s.)
service.bridgeOptions = { pull: { pollIntervalMs: 100 } };
const pull = await service.SubscribeToPullNotifications([new FolderId(WellKnownFolderName.Inbox)], 30, null as unknown as string, EventType.NewMail);
const pulled: string[] = [];
const before = sim.deliver(MAILBOX, { type: 'NewMail' });
sim.inject({ type: 'forget-subscriptions' });
const after = sim.deliver(MAILBOX, { type: 'NewMail' });
while (pulled.length < 2) {
  const results = await pull.GetEvents();
  for (const event of results.ItemEvents) pulled.push(event.ItemId.UniqueId);
  await pause(50);
}
assert.deepEqual(pulled, [before.itemId?.id, after.itemId?.id]);
console.log(`pull: ${pulled.length} of 2 new mails across a lost subscription, watermark ${pull.Watermark}`);

connection.Close();
await subscription.Unsubscribe();
await pull.Unsubscribe();
await sim.close();
