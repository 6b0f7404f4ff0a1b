/**
 * The streaming source's options (what {@link streamingSignals} and the hybrid source's doorbell
 * take), their defaults and their resolution, shared with the group members' gap recovery.
 *
 * @internal
 */
import { requireCheckpointKey, requireCheckpointStore, type CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { booleanOption, intInRange, oneOf, optionalFunction, positiveMs } from '../validate.js';
import { defaultCheckpointKey } from './pull-session.js';
import { resolveGapRecoveryOptions, type GapRecoveryConfig, type GapRecoveryOptions } from './gap-recovery.js';
import type { LifecycleListener } from './lifecycle.js';
import { resolveSourceOptions, type ResolvedSourceOptions, type SourceOptions } from './options.js';

/** How a streaming connection behaves: the single source's and a `StreamingGroup`'s. */
export interface StreamingConnectionOptions {
  /**
   * Minutes the server keeps one GetStreamingEvents connection open before ending it with
   * `ConnectionStatus Closed` (the source then reopens at once), 1–30. Default `30`.
   */
  readonly connectionTimeoutMinutes?: number;
  /**
   * A connection that carries no complete envelope (notification or keep-alive) for this long is
   * declared dead and replaced; bytes that never finish an envelope do not count. Exchange sends
   * keep-alives well within it. Default `90_000` (what Microsoft's own client uses).
   */
  readonly heartbeatTimeoutMs?: number;
  /**
   * What to do when the server reports that another connection took over our subscription
   * (`ErrorNewEventStreamConnectionOpened`): `'error'` errors the Observable with
   * `EwsConnectionTakenError` (someone else is using our subscription; fighting over it would
   * starve both); `'reconnect'` reports it as a disconnect and takes the subscription back after
   * the usual back-off. Default `'error'`.
   */
  readonly onConnectionTaken?: 'error' | 'reconnect';
}

/** Gap recovery of one streaming subscription: a single source's, or a `StreamingGroup` member's. */
export interface StreamingRecoveryOptions {
  /**
   * Where SyncFolderItems sync states live (one per watched folder, under `checkpointKey`): with a
   * store, every gap that may have lost events is recovered with SyncFolderItems and a restarted
   * source catches up on what changed while it was down (see docs/retry-and-gaps.md). The same
   * store a pull source uses works. Default: none — gaps are reported, not recovered.
   */
  readonly checkpoint?: CheckpointStore;
  /** The key of this subscription's sync states in the store. Default: `checkpointKey()` of the mailbox, folders and event types (as pull). */
  readonly checkpointKey?: string;
  /** `false` keeps the store unused (gaps reported, not recovered). Default `true` when `checkpoint` is given. */
  readonly recoverGaps?: boolean;
  /** Tuning of the recovery: re-baseline policy, page size. Default: see {@link GapRecoveryOptions}. */
  readonly recovery?: GapRecoveryOptions;
}

/** Options of {@link streamingNotifications} and {@link streamingSignals}. */
export interface StreamingOptions extends SourceOptions, StreamingConnectionOptions, StreamingRecoveryOptions {
  /**
   * Receives the lifecycle signals (subscribed, connected, keep-alive, disconnected, retrying, gap)
   * of {@link streamingNotifications}, synchronously and in order with its notifications. A
   * listener that throws is logged, not fatal. Default: none. ({@link streamingSignals} emits
   * them in the stream instead.)
   */
  readonly onLifecycle?: LifecycleListener;
}

/** {@link StreamingConnectionOptions} checked and with defaults applied. @internal */
export interface ResolvedStreamSettings {
  readonly connectionTimeoutMinutes: number;
  readonly heartbeatTimeoutMs: number;
  readonly onConnectionTaken: 'error' | 'reconnect';
}

/** Checks {@link StreamingConnectionOptions} (the single source's, the hybrid doorbell's, a group's). @internal */
export function resolveStreamSettings(options: StreamingConnectionOptions): ResolvedStreamSettings {
  const onConnectionTaken = oneOf(options.onConnectionTaken, 'onConnectionTaken', ['error', 'reconnect'], 'error');
  return {
    connectionTimeoutMinutes: intInRange(options.connectionTimeoutMinutes, 'connectionTimeoutMinutes', 30, 1, 30),
    heartbeatTimeoutMs: positiveMs(options.heartbeatTimeoutMs, 'heartbeatTimeoutMs', 90_000),
    onConnectionTaken,
  };
}

/** @internal */
export interface ResolvedStreamingOptions extends ResolvedSourceOptions, ResolvedStreamSettings {
  /** Set when gaps are recovered. */
  readonly recovery: GapRecoveryConfig | undefined;
}

/** Checks `checkpoint`/`checkpointKey`/`recoverGaps`/`recovery` of a streaming source (or group member). @internal */
export function resolveRecovery(
  options: StreamingRecoveryOptions,
  base: ResolvedSourceOptions,
): GapRecoveryConfig | undefined {
  const { checkpoint } = options;
  const recoverGaps = booleanOption(options.recoverGaps, 'recoverGaps', true);
  const tuning = resolveGapRecoveryOptions(options.recovery);
  if (checkpoint === undefined) return undefined;
  const store = requireCheckpointStore(checkpoint);
  const key = requireCheckpointKey(options.checkpointKey ?? defaultCheckpointKey(base));
  if (recoverGaps === false || base.subscribeToAllFolders) return undefined;
  return { source: base, store, key, ...tuning };
}

/** Every option of a streaming source, checked (a `TypeError`/`RangeError` names the first bad one). @internal */
export function resolveStreamingOptions(options: StreamingOptions): ResolvedStreamingOptions {
  const base = resolveSourceOptions(options);
  optionalFunction(options.onLifecycle, 'onLifecycle');
  return { ...base, ...resolveStreamSettings(options), recovery: resolveRecovery(options, base) };
}
