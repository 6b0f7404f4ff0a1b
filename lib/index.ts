/**
 * ews-push-bridge: EWS streaming and pull notifications as RxJS observables, delivered through
 * adapters that keep the legacy push-notification contract.
 *
 * This entry holds what an application uses (at most 50 names, checked by a test): the sources and
 * the streaming group, the notifications and signals they emit, their main options, the checkpoint
 * stores, and the base error class with its codes. Every name is listed on purpose (no
 * `export *`); `api/ews-push-bridge.api.md` is the reviewed record of this surface and `npm test`
 * fails when it changes unrecorded. The rest lives in subpaths, each with its own report:
 *
 * - `ews-push-bridge/errors`: every error class (match on `code`; `instanceof` holds across entries).
 * - `ews-push-bridge/types`: the detailed types this entry leaves out (each lifecycle signal, each
 *   auth variant, each event shape, store options); their unions are here.
 * - `ews-push-bridge/redis`: checkpoints and mailbox leases shared by many processes through Redis.
 * - `ews-push-bridge/autodiscover`: finding the EWS URL of mailboxes and grouping them by server.
 * - `ews-push-bridge/wire`: the wire layer (envelope parser, request builders, the response-code
 *   table, the SOAP transport, NTLM messages), for advanced uses.
 * - `ews-push-bridge/testing`: the EWS simulator; `ews-push-bridge/adapters/*`: the legacy shapes.
 *
 * @packageDocumentation
 */

// Sources: one Observable per subscription, or one connection for many mailboxes.
export { streamingNotifications, streamingSignals, type StreamingOptions } from './sources/streaming.js';
export type { GapRecoveryOptions } from './sources/gap-recovery.js';
export { pullNotifications, pullSignals, type PullOptions } from './sources/pull.js';
export { hybridNotifications, hybridSignals, type HybridOptions } from './sources/hybrid.js';
export {
  StreamingGroup,
  type StreamingGroupOptions,
  type StreamingGroupMemberOptions,
  type StreamingGroupStats,
} from './sources/streaming-group.js';
export { sourceClosed } from './sources/source-closed.js';
export { deferAck, type AckFunction, type AckMode } from './sources/ack.js';
export type { SourceOptions } from './sources/options.js';
export type { RetryOptions } from './sources/backoff.js';

// What the sources emit (each lifecycle signal's own type: ews-push-bridge/types).
export type {
  SourceSignal,
  NotificationSignal,
  SourceLifecycleEvent,
  LifecycleListener,
  GapEvent,
  DoorbellEvent,
} from './sources/lifecycle.js';
export {
  EVENT_TYPES,
  type PushNotification,
  type NotificationEvent,
  type EventType,
  type SubscriptionStatus,
  type FolderRef,
  type DistinguishedFolderName,
  type ExchangeVersion,
} from './model.js';

// Connection options the sources share (each auth variant: ews-push-bridge/types).
export type { EwsAuth } from './ews/auth-header.js';
export type { EwsTlsOptions } from './ews/tls.js';
export type { FolderSpec } from './ews/requests.js';
export { silentLogger, type Logger } from './logger.js';

// Checkpoints (shared by many processes: ews-push-bridge/redis).
export { checkpointKey, type CheckpointStore, type Checkpoint } from './checkpoint/checkpoint-store.js';
export { MemoryCheckpointStore } from './checkpoint/memory-store.js';
export { FileCheckpointStore } from './checkpoint/file-store.js';

// Errors: every error of the library is an EwsBridgeError with a stable `code`; the subclasses
// are in ews-push-bridge/errors.
export { EwsBridgeError, type EwsBridgeErrorCode } from './errors.js';
