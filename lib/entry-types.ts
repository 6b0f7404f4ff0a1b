/**
 * `ews-push-bridge/types`: the types the main entry leaves out to stay short, for code that names
 * them: each lifecycle signal (`ConnectedEvent`, `DisconnectedEvent`, …), each auth variant
 * (`NtlmAuth`, `NegotiateAuth`, …), each event shape (`ObjectChangedEvent`, `StatusEvent`, …), the
 * options of the stores, and the details of errors. The unions they belong to (`SourceSignal`,
 * `EwsAuth`, `NotificationEvent`, …) are on the main entry. Types only: importing it loads no code.
 * `npm test` checks that every type the main entry's declarations name is exported by one of the
 * two. Recorded in `api/ews-push-bridge-types.api.md`.
 *
 * @packageDocumentation
 */

// Each lifecycle signal (their union, SourceLifecycleEvent, is on the main entry).
export type {
  SubscribedEvent,
  ConnectedEvent,
  KeepAliveEvent,
  DisconnectedEvent,
  DisconnectReason,
  RetryingEvent,
  GapUnrecoverableReason,
  DeliveredEventRef,
  DoorbellFailedEvent,
} from './sources/lifecycle.js';

// Each event shape (their union, NotificationEvent, is on the main entry).
export type { ObjectChangedEvent, MovedOrCopiedEvent, StatusEvent, Id } from './model.js';

// Each auth variant (their union, EwsAuth, is on the main entry), and connection details.
export type { NoAuth, BasicAuth, BearerAuth, NtlmAuth, NegotiateAuth } from './ews/auth-header.js';
export type { TlsMaterial } from './ews/tls.js';
export type { MailboxFolderRef } from './ews/requests.js';
export type { CookieJar } from './ews/transport.js';

// The parts the sources' and the group's options are made of.
export type { ConnectionOptions, SubscriptionScopeOptions } from './sources/options.js';
export type { StreamingConnectionOptions, StreamingRecoveryOptions } from './sources/streaming-options.js';

// Checkpoints: what a store receives, and the stores' options.
export type { CheckpointUpdate, CheckpointKeyOptions } from './checkpoint/checkpoint-store.js';
export type { FileCheckpointStoreOptions } from './checkpoint/file-store.js';

// Errors' details (the classes are in ews-push-bridge/errors).
export type { EwsErrorDetails, ResponseCodeAction, CheckpointLockHolder } from './errors.js';
