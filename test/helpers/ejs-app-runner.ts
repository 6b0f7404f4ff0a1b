/**
 * Starts one of the sample apps in test/ejs-apps/ — on ews-javascript-api's own classes
 * (`variant: 'ews'`) or on the bridge's (`'bridge'`) — and reports each event's simulator sequence
 * number, each line the app prints (errors flagged) and, on the bridge, each `OnGap` (registered
 * outside the app's code). Run in a child process by test/children/ejs-app.ts, or in the test's own.
 */
import type { NotificationEvent } from 'ews-javascript-api';
import { FolderEvent, ItemEvent } from 'ews-javascript-api';
import { decodeChangeKey } from '../../lib/testing/ids.js';

/** Which app, on which classes, against which server. */
export interface AppTask {
  readonly app: 'streaming' | 'pull';
  readonly variant: 'ews' | 'bridge';
  readonly url: string;
  readonly pollMs: number;
}

/** What a running app reports. */
export type AppReport =
  | { readonly type: 'ready' }
  | { readonly type: 'event'; readonly seq: number; readonly at: number }
  | { readonly type: 'line'; readonly text: string; readonly error: boolean; readonly at: number }
  | { readonly type: 'gap'; readonly from: number; readonly to: number }
  | { readonly type: 'failed'; readonly error: string };

const USER = 'alice@contoso.com';
const PASSWORD = 'secret';


function seqOf(event: NotificationEvent): number {
  const changeKey = event instanceof ItemEvent ? event.ItemId?.ChangeKey : event instanceof FolderEvent ? event.FolderId?.ChangeKey : undefined;
  return (typeof changeKey === 'string' ? decodeChangeKey(changeKey) : undefined) ?? -1;
}

/** Starts the app; resolves with its stop function (Close, Unsubscribe) once it has subscribed. */
export async function startApp(task: AppTask, send: (report: AppReport) => void): Promise<() => Promise<void>> {
  const out = {
    line: (text: string) => send({ type: 'line', text, error: text.includes('-----Error-----'), at: Date.now() }),
    event: (event: NotificationEvent) => send({ type: 'event', seq: seqOf(event), at: Date.now() }),
  };
  if (task.variant === 'bridge') {
    // Start-up configuration, outside the app's code: faster polling and retries for a test.
    const { ExchangeService } = await import('../../adapters/ews-javascript-api.js');
    ExchangeService.defaultBridgeOptions = { pull: { pollIntervalMs: 50, retry: { minDelayMs: 50, maxDelayMs: 500 } }, streaming: { retry: { minDelayMs: 50, maxDelayMs: 500 } } };
  }
  if (task.app === 'streaming') {
    const app = task.variant === 'ews' ? await import('../ejs-apps/streaming-app.ews.js') : await import('../ejs-apps/streaming-app.bridge.js');
    const { connection, subscription } = await app.setStreamingNotifications(task.url, USER, PASSWORD, out);
    const gaps = (connection as { OnGap?: ((sender: unknown, args: { Gap: { from: Date; to: Date } }) => void)[] }).OnGap;
    gaps?.push((_sender, args) => send({ type: 'gap', from: args.Gap.from.getTime(), to: args.Gap.to.getTime() }));
    return async () => {
      if (connection.IsOpen) connection.Close();
      await subscription.Unsubscribe().catch(() => undefined);
    };
  }
  const app = task.variant === 'ews' ? await import('../ejs-apps/pull-app.ews.js') : await import('../ejs-apps/pull-app.bridge.js');
  const { subscription, stop } = await app.pullNotifications(task.url, USER, PASSWORD, task.pollMs, out);
  return async () => {
    stop();
    await subscription.Unsubscribe().catch(() => undefined);
  };
}

