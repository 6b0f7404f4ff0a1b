/**
 * `ews-push-bridge tail --url … --mailbox …`: watch a server's notifications scroll by. JSON lines
 * (one notification per line, for `jq`) when stdout is not a terminal or with `--json`; a readable
 * line per event on a terminal. Connection changes go to stderr, so stdout stays data only.
 *
 * @packageDocumentation
 */
import type { Subscription } from 'rxjs';
import type { EventType, EwsAuth, FolderRef, Logger, NotificationEvent, PushNotification, SourceSignal } from '../lib/index.js';
import type { Mode } from './config-schema.js';
import { CliError, EXIT, toCliError, type ExitCode } from './exit-codes.js';
import { AgentTracker, cliSourceSignals } from './sources.js';

/** Options of {@link runTail}. */
export interface TailOptions {
  readonly url: string;
  readonly auth: EwsAuth;
  /** Impersonated mailbox; `undefined` for the account's own. */
  readonly mailbox: string | undefined;
  readonly mode: Mode;
  readonly folders: readonly FolderRef[];
  readonly subscribeToAllFolders: boolean;
  readonly eventTypes: readonly EventType[] | undefined;
  /** Extra CA certificates (PEM) for an https endpoint. Default: system trust. */
  readonly ca?: Buffer;
  /** JSON lines (`true`) or readable lines (`false`). */
  readonly json: boolean;
  /** Pull/hybrid: time between polls. Default: the library's (10 s pull, 60 s hybrid). */
  readonly pollIntervalMs?: number;
  /** Stop after this many events (status events not counted). Default: run until stopped. */
  readonly limit?: number;
  /** The first connection must be up within this, else the command fails (exit 3/4). */
  readonly connectTimeoutMs: number;
  readonly stdout: { write(chunk: string): unknown };
  readonly logger: Logger;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

function shortId(id: string | undefined): string {
  if (id === undefined) return '';
  return id.length > 24 ? `…${id.slice(-23)}` : id;
}

function time(date: Date): string {
  return date.toISOString().slice(11, 23);
}

/** One readable line for one event (at most 80 columns for typical ids). */
export function eventLine(event: NotificationEvent, notification: PushNotification, at: Date): string {
  const who = notification.mailbox ?? '';
  if (event.type === 'Status') return `${time(at)}  ${'Status'.padEnd(15)} ${who}`.trimEnd();
  const what = event.itemId ? `item ${shortId(event.itemId.id)}` : `folder ${shortId(event.folderId?.id)}`;
  return `${time(at)}  ${event.type.padEnd(15)} ${who ? `${who}  ` : ''}${what}`;
}

/** Runs until stopped, `limit` events, or a fatal error; returns the exit code. */
export async function runTail(options: TailOptions): Promise<ExitCode> {
  const { logger } = options;
  const endpoint = (() => {
    try {
      const u = new URL(options.url);
      return `${u.origin}${u.pathname}`;
    } catch {
      return 'the EWS URL';
    }
  })();
  const tracker = new AgentTracker();
  let printed = 0;
  let connected = false;
  // A doorbell failure before the first connection waits for it: when the same cause (refused
  // credentials) then ends the start-up, the exit message says it once.
  let heldDoorbellWarning: (() => void) | undefined;
  let subscription: Subscription | undefined;
  let lastError: unknown;

  const outcome = await new Promise<{ kind: 'stopped' | 'limit' | 'completed' } | { kind: 'failed'; error: unknown }>((resolve) => {
    const timer = setTimeout(() => {
      if (connected) return;
      resolve({
        kind: 'failed',
        error: lastError ?? new CliError(EXIT.unreachable, `No connection to ${endpoint} within ${options.connectTimeoutMs / 1000} s (--connect-timeout).`),
      });
    }, options.connectTimeoutMs);
    const finish = (result: { kind: 'stopped' | 'limit' | 'completed' } | { kind: 'failed'; error: unknown }): void => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = (): void => finish({ kind: 'stopped' });
    if (options.signal.aborted) {
      finish({ kind: 'stopped' });
      return;
    }
    options.signal.addEventListener('abort', onAbort, { once: true });

    const onSignal = (signal: SourceSignal): void => {
      switch (signal.type) {
        case 'notification': {
          const n = signal.notification;
          const at = new Date();
          const events = options.limit === undefined ? n.events : n.events.slice(0, Math.max(0, options.limit - printed));
          const real = events.filter((e) => e.type !== 'Status').length;
          if (options.json) {
            options.stdout.write(`${JSON.stringify({ receivedAt: at.toISOString(), ...n, events })}\n`);
          } else {
            for (const event of events) options.stdout.write(`${eventLine(event, n, at)}\n`);
          }
          printed += real;
          if (options.limit !== undefined && printed >= options.limit) finish({ kind: 'limit' });
          return;
        }
        case 'connected':
          connected = true;
          lastError = undefined;
          logger.info('connected', { mailbox: options.mailbox, mode: options.mode });
          heldDoorbellWarning?.();
          heldDoorbellWarning = undefined;
          return;
        case 'disconnected':
          logger.info('disconnected; reconnecting', { reason: signal.reason });
          return;
        case 'retrying':
          lastError = signal.error;
          logger.warn('attempt failed; retrying', { reason: signal.reason, code: signal.error.code, delayMs: signal.delayMs });
          return;
        case 'gap':
          logger.warn(signal.eventsMayBeLost ? 'gap: events in this window may be missing' : 'gap: nothing lost', {
            reason: signal.reason,
            from: signal.from,
            to: signal.to,
          });
          return;
        case 'doorbell':
          // Hybrid's fast path gave up; polling carries on (the source's own line is at debug).
          if (signal.event.type === 'failed') {
            const fields = { reopenInMs: signal.event.restartInMs };
            const warn = (): void => logger.warn('doorbell failed; polling only until it is reopened', fields);
            if (connected) warn();
            else heldDoorbellWarning = warn;
          }
          return;
        default:
          return;
      }
    };
    subscription = cliSourceSignals(
      {
        mode: options.mode,
        url: options.url,
        auth: options.auth,
        mailbox: options.mailbox,
        folders: options.folders,
        subscribeToAllFolders: options.subscribeToAllFolders,
        eventTypes: options.eventTypes,
        pollIntervalMs: options.pollIntervalMs,
        ca: options.ca,
        // Pull's idle answers carry nothing to show.
        emitStatusEvents: false,
        logger,
      },
      tracker,
    ).subscribe({
      next: onSignal,
      error: (error: unknown) => finish({ kind: 'failed', error }),
      complete: () => finish({ kind: 'completed' }),
    });
  });

  subscription?.unsubscribe();
  // The source removes its EWS subscription in the background; wait for it (bounded) before exiting.
  await tracker.allDestroyed(7_000);
  if (outcome.kind === 'failed') throw toCliError(outcome.error, endpoint);
  return EXIT.ok;
}
