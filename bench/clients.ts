/**
 * The three ways the benches consume a GetStreamingEvents stream, loaded on demand so that a child
 * process pays only for the client it runs (ews-javascript-api alone takes ~1.5 s to load):
 *
 * - `ours`: `streamingNotifications` (client-ours.ts);
 * - `eja`: ews-javascript-api's StreamingSubscriptionConnection (client-eja.ts);
 * - `saxes`: raw saxes on the same socket, counting only (client-saxes.ts);
 * - `http`: the same requests, the body decoded, no XML parsing (client-saxes.ts; only on request);
 * - `ours-pull`, `eja-pull`: `pullNotifications` and ews-javascript-api's PullSubscription (client-pull.ts).
 *
 * Each run ends when the expected number of events has arrived, when the client says its
 * connection ended (the check then tells what was lost), or at `timeoutMs`.
 */
import type { ConsumeOptions, ConsumeResult } from './recorder.js';

/** The streaming client kinds, in the order the benches alternate them. */
export const CLIENTS = ['ours', 'eja', 'saxes'] as const;
/** Below the floor: the same requests, no XML parsing (`consumeHttpOnly` in client-saxes.ts); only run when asked (`--clients=`). */
export const HTTP_ONLY = 'http' as const;
/** The pull client kinds (client-pull.ts). */
export const PULL_CLIENTS = ['ours-pull', 'eja-pull'] as const;
export type ClientKind = (typeof CLIENTS)[number] | typeof HTTP_ONLY | (typeof PULL_CLIENTS)[number];

/** Loads a client's modules (and, for `ours`, the built bundle) without consuming anything. */
export async function preload(kind: ClientKind): Promise<void> {
  switch (kind) {
    case 'ours':
      await import('./client-ours.js');
      await (await import('./shipped.js')).shipped();
      return;
    case 'eja':
      await import('./client-eja.js');
      return;
    case 'saxes':
    case 'http':
      await import('./client-saxes.js');
      return;
    default:
      await import('./client-pull.js');
  }
}

/** Runs one client against `options.url` until the stream is done. */
export async function consume(kind: ClientKind, options: ConsumeOptions): Promise<ConsumeResult> {
  switch (kind) {
    case 'ours':
      return (await import('./client-ours.js')).consumeOurs(options);
    case 'eja':
      return (await import('./client-eja.js')).consumeEja(options);
    case 'saxes':
      return (await import('./client-saxes.js')).consumeSaxes(options);
    case 'http':
      return (await import('./client-saxes.js')).consumeHttpOnly(options);
    case 'ours-pull':
      return (await import('./client-pull.js')).consumePullOurs(options);
    case 'eja-pull':
      return (await import('./client-pull.js')).consumePullEja(options);
  }
}
