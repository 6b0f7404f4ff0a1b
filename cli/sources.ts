/**
 * The source behind every CLI command: streaming, pull or hybrid signals for one mailbox, built on
 * connection pools the CLI owns, so that it can tell when a stopped source has finished its EWS
 * Unsubscribe (the source destroys its pool only after that) before the process exits.
 *
 * @packageDocumentation
 */
import type { Agent } from 'node:http';
import type { Observable } from 'rxjs';
import {
  hybridSignals,
  pullSignals,
  streamingSignals,
  type StreamingGroup,
  type CheckpointStore,
  type EventType,
  type EwsTlsOptions,
  type EwsAuth,
  type ExchangeVersion,
  type FolderRef,
  type Logger,
  type RetryOptions,
  type SourceSignal,
} from '../lib/index.js';
import { createEwsAgent } from '../lib/wire.js';
import type { Mode } from './config-schema.js';
import { libraryLogger } from './logger.js';

/** Everything a CLI source needs. */
export interface CliSourceOptions {
  readonly mode: Mode;
  readonly url: string;
  readonly auth: EwsAuth;
  /** Impersonated mailbox; `undefined` for the account's own. */
  readonly mailbox: string | undefined;
  readonly folders: readonly FolderRef[];
  readonly subscribeToAllFolders: boolean;
  /** `undefined`: every event type. */
  readonly eventTypes: readonly EventType[] | undefined;
  readonly requestServerVersion?: ExchangeVersion | undefined;
  /** Extra CA certificates for an https EWS endpoint. */
  readonly ca?: Buffer | undefined;
  /** Check the server's certificate. Default `true`; `false` makes the library log a warning. */
  readonly rejectUnauthorized?: boolean;
  /** `X-AnchorMailbox` for an affinity group; `undefined`: the library's default (`mailbox`). */
  readonly anchorMailbox?: string | undefined;
  /** Pull/hybrid poll interval; `undefined` for the library's default. */
  readonly pollIntervalMs?: number | undefined;
  /**
   * Pull/hybrid position store; `undefined` keeps positions in memory. Streaming keeps its
   * SyncFolderItems sync states there and recovers its gaps with them; `undefined`: no recovery.
   */
  readonly checkpoint?: CheckpointStore | undefined;
  /** Whether pull/hybrid idle answers (StatusEvents only) are emitted. Default: the library's (`true`). */
  readonly emitStatusEvents?: boolean;
  readonly retry?: RetryOptions;
  /**
   * The command's logger. The source itself gets {@link libraryLogger} of it (the command logs its
   * lifecycle signals); the connection pool gets it as is (its TLS warning is nobody else's).
   */
  readonly logger: Logger;
  /**
   * The group whose shared connections carry this mailbox's streaming subscription (streaming
   * mode) or doorbell (hybrid mode): `forward` with several impersonated mailboxes. Default: a
   * connection of its own.
   */
  readonly group?: StreamingGroup | undefined;
}

/** The TLS settings of a CLI source, `undefined` for Node's defaults. */
export function cliTls(options: Pick<CliSourceOptions, 'ca' | 'rejectUnauthorized'>): EwsTlsOptions | undefined {
  return options.ca === undefined && options.rejectUnauthorized !== false
    ? undefined
    : { ...(options.ca === undefined ? {} : { ca: options.ca }), ...(options.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) };
}

/** Knows the connection pools a source made and when they have all been destroyed. */
export class AgentTracker {
  private live = 0;
  private waiters: (() => void)[] = [];

  /** A pool for the source, with the source's TLS settings; its `destroy()` is counted. */
  create(url: string, tls: EwsTlsOptions | undefined, logger: Logger): Agent {
    const agent = createEwsAgent({ url, ...(tls === undefined ? {} : { tls }), logger });
    const destroy = agent.destroy.bind(agent);
    let destroyed = false;
    this.live++;
    agent.destroy = (): void => {
      destroy();
      if (destroyed) return;
      destroyed = true;
      this.live--;
      if (this.live === 0) for (const wake of this.waiters.splice(0)) wake();
    };
    return agent;
  }

  /**
   * Resolves `true` once every pool made so far is destroyed (the sources finished their
   * Unsubscribe), or `false` after `timeoutMs`.
   */
  allDestroyed(timeoutMs: number): Promise<boolean> {
    if (this.live === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(wake);
    });
  }
}

/** The signals Observable of a source in `options.mode`, its pools made by `tracker`. */
export function cliSourceSignals(options: CliSourceOptions, tracker: AgentTracker): Observable<SourceSignal> {
  if (options.mode === 'streaming' && options.group !== undefined) {
    return options.group.signals({
      ...(options.mailbox === undefined ? {} : { mailbox: options.mailbox }),
      folders: options.folders,
      subscribeToAllFolders: options.subscribeToAllFolders,
      ...(options.eventTypes === undefined ? {} : { eventTypes: options.eventTypes }),
      ...(options.checkpoint === undefined ? {} : { checkpoint: options.checkpoint }),
    });
  }
  const tls = cliTls(options);
  const common = {
    url: options.url,
    auth: options.auth,
    ...(options.mailbox === undefined ? {} : { mailbox: options.mailbox }),
    folders: options.folders,
    subscribeToAllFolders: options.subscribeToAllFolders,
    ...(options.eventTypes === undefined ? {} : { eventTypes: options.eventTypes }),
    ...(options.requestServerVersion === undefined ? {} : { requestServerVersion: options.requestServerVersion }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.anchorMailbox === undefined ? {} : { anchorMailbox: options.anchorMailbox }),
    createAgent: () => tracker.create(options.url, tls, options.logger),
    logger: libraryLogger(options.logger),
  };
  if (options.mode === 'streaming') return streamingSignals({ ...common, ...(options.checkpoint === undefined ? {} : { checkpoint: options.checkpoint }) });
  const pull = {
    ...common,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
    ...(options.checkpoint === undefined ? {} : { checkpoint: options.checkpoint }),
    ...(options.emitStatusEvents === undefined ? {} : { emitStatusEvents: options.emitStatusEvents }),
  };
  if (options.mode === 'pull') return pullSignals(pull);
  return hybridSignals({ ...pull, ...(options.group === undefined ? {} : { doorbellGroup: options.group }) });
}
