/**
 * `ews-push-bridge/types`: every type of the library by name, for code that names them. It holds
 * the types of the main entry and the detailed ones the main entry leaves out to stay short: each
 * lifecycle signal (`ConnectedEvent`, `GapEvent`, …), each auth variant (`NtlmAuth`,
 * `NegotiateAuth`, …), each event shape, and the options of the stores. Types only: importing it
 * loads no code. Recorded in `api/ews-push-bridge-types.api.md`.
 *
 * @packageDocumentation
 */

// Sources and their options.
export type { StreamingOptions } from './sources/streaming.js';
export type { GapRecoveryOptions } from './sources/gap-recovery.js';
export type { PullOptions } from './sources/pull.js';
export type { HybridOptions } from './sources/hybrid.js';
export type { StreamingGroupOptions, StreamingGroupMemberOptions, StreamingGroupStats } from './sources/streaming-group.js';
export type { AckFunction, AckMode } from './sources/ack.js';
export type { SourceOptions } from './sources/options.js';
export type { RetryOptions } from './sources/backoff.js';

// What the sources emit.
export type {
  SourceSignal,
  NotificationSignal,
  SourceLifecycleEvent,
  LifecycleListener,
  SubscribedEvent,
  ConnectedEvent,
  KeepAliveEvent,
  DisconnectedEvent,
  DisconnectReason,
  RetryingEvent,
  GapEvent,
  GapUnrecoverableReason,
  DeliveredEventRef,
  DoorbellEvent,
  DoorbellFailedEvent,
} from './sources/lifecycle.js';
export type {
  PushNotification,
  NotificationEvent,
  ObjectChangedEvent,
  MovedOrCopiedEvent,
  StatusEvent,
  EventType,
  SubscriptionStatus,
  Id,
  FolderRef,
  DistinguishedFolderName,
  ExchangeVersion,
} from './model.js';

// Connection options.
export type { EwsAuth, NoAuth, BasicAuth, BearerAuth, NtlmAuth, NegotiateAuth } from './ews/auth-header.js';
export type { EwsTlsOptions, TlsMaterial } from './ews/tls.js';
export type { FolderSpec, MailboxFolderRef } from './ews/requests.js';
export type { CookieJar } from './ews/transport.js';
export type { Logger } from './logger.js';

// Checkpoints.
export type { CheckpointStore, Checkpoint, CheckpointUpdate, CheckpointKeyOptions } from './checkpoint/checkpoint-store.js';
export type { FileCheckpointStoreOptions } from './checkpoint/file-store.js';

// Errors' details.
export type { EwsBridgeErrorCode, EwsErrorDetails, ResponseCodeAction, CheckpointLockHolder } from './errors.js';
