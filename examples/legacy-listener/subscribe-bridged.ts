/**
 * Migration 1 — zero code in the listener: listener-2015.ts runs unchanged; only the subscription
 * moves. The bridge holds an EWS streaming subscription (the app is the authenticated caller, as
 * with pull — nothing for PrivExchange to relay) and POSTs the same `SendNotification` envelopes
 * to the same listener URL, honouring its `OK` / `Unsubscribe` answers.
 *
 * Compared with subscribe-2015.ts, the body of `subscribe` changed; its signature did not.
 */
// In an app: from 'ews-push-bridge' and 'ews-push-bridge/adapters/soap-forwarder'.
import { streamingSignals } from '../../lib/index.js';
import { soapForwarder, type PushCallbackHandle } from '../../adapters/soap-forwarder.js';

export function subscribe(ewsUrl: string, user: string, password: string, listenerUrl: string): PushCallbackHandle {
  return soapForwarder(
    streamingSignals({
      url: ewsUrl,
      auth: { type: 'basic', username: user, password },
      folders: ['inbox'],
      eventTypes: ['NewMail', 'Created', 'Deleted', 'Modified', 'Moved', 'Copied'],
    }),
    { url: listenerUrl, statusFrequencyMinutes: 1 },
  );
}
