/**
 * Migration 2 — no HTTP listener any more: listener-2015.ts's request handler becomes a push
 * callback. The loop over the events is the same; it reads the fields instead of matching them in
 * the XML, and returns the answer instead of writing it. Same CRM, same OK/Unsubscribe semantics,
 * same keep-alives (every `statusFrequencyMinutes`), and failures are retried as Exchange did.
 */
// In an app: from 'ews-push-bridge' and 'ews-push-bridge/adapters/push-callback'.
import { streamingSignals } from '../../lib/index.js';
import { pushCallback, type PushCallbackHandle } from '../../adapters/push-callback.js';
import type { Crm } from './crm.js';

export function start(crm: Crm, ewsUrl: string, user: string, password: string): PushCallbackHandle {
  const source = streamingSignals({
    url: ewsUrl,
    auth: { type: 'basic', username: user, password },
    folders: ['inbox'],
    eventTypes: ['NewMail', 'Created', 'Deleted', 'Modified', 'Moved', 'Copied'],
  });
  return pushCallback(
    source,
    function (notification) {
      for (const event of notification.events) {
        if (event.type === 'Status') {
          crm.heartbeat();
          continue;
        }
        const id = event.itemId ?? event.folderId;
        if (!id) continue;
        crm.file({ subscriptionId: notification.subscriptionId, type: event.type, kind: event.itemId ? 'item' : 'folder', id: id.id, changeKey: id.changeKey });
      }
      return crm.answer();
    },
    { statusFrequencyMinutes: 1 },
  );
}
