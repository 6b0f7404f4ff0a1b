/**
 * ews-push-bridge: EWS streaming and pull notifications as RxJS observables, delivered through
 * adapters that keep the legacy push-notification contract.
 *
 * This entry holds what an application uses: the sources and the streaming group, the
 * notification and signal types they emit, their options, the checkpoint stores and the lease
 * coordinator, Autodiscover, and the typed errors. Every name is listed here on purpose (no
 * `export *`); `api/ews-push-bridge.api.md` is the reviewed record of this surface and `npm test`
 * fails when it changes unrecorded. The wire layer (envelope parser, request builders, the
 * response-code table, the SOAP transport, NTLM messages) is the separate entry
 * `ews-push-bridge/wire`, for advanced uses.
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
export {
  EVENT_TYPES,
  type PushNotification,
  type NotificationEvent,
  type ObjectChangedEvent,
  type MovedOrCopiedEvent,
  type StatusEvent,
  type EventType,
  type SubscriptionStatus,
  type Id,
  type FolderRef,
  type DistinguishedFolderName,
  type ExchangeVersion,
} from './model.js';

// Connection options the sources share.
export type { EwsAuth, NoAuth, BasicAuth, BearerAuth, NtlmAuth, NegotiateAuth } from './ews/auth-header.js';
export type { EwsTlsOptions, TlsMaterial } from './ews/tls.js';
export type { FolderSpec, MailboxFolderRef } from './ews/requests.js';
export type { CookieJar } from './ews/transport.js';
export { silentLogger, type Logger } from './logger.js';

// Checkpoints and coordination.
export {
  checkpointKey,
  type CheckpointStore,
  type Checkpoint,
  type CheckpointUpdate,
  type CheckpointKeyOptions,
} from './checkpoint/checkpoint-store.js';
export { MemoryCheckpointStore } from './checkpoint/memory-store.js';
export { FileCheckpointStore, type FileCheckpointStoreOptions } from './checkpoint/file-store.js';
export {
  RedisCheckpointStore,
  FencedCheckpointStore,
  type LeaseFence,
  type RedisCheckpointStoreOptions,
} from './checkpoint/redis-store.js';
export {
  RedisLeaseCoordinator,
  type RedisLeaseCoordinatorOptions,
  type LeaseCoordinatorStats,
  type MailboxLease,
  type LeaseLostReason,
} from './coordination/lease-coordinator.js';
export type { RedisScriptClient } from './coordination/redis-client.js';

// Finding the server of a mailbox.
export {
  autodiscover,
  groupMailboxesByServer,
  type AutodiscoverOptions,
  type AutodiscoverOutcome,
  type AutodiscoverResult,
  type AutodiscoverRedirect,
  type MailboxGroup,
} from './ews/autodiscover.js';

// Errors: every error of the library is an EwsBridgeError with a stable `code`.
export {
  EwsBridgeError,
  EwsParseError,
  EwsXmlForbiddenError,
  EwsEnvelopeTooLargeError,
  EwsNotXmlError,
  EwsHttpError,
  EwsResponseError,
  EwsSoapFaultError,
  EwsAuthError,
  EwsTokenProviderError,
  EwsCredentialsError,
  EwsPeerMissingError,
  EwsAutodiscoverError,
  EwsConnectionError,
  EwsStreamCutError,
  EwsHeartbeatTimeoutError,
  EwsConnectionTakenError,
  EwsListenerError,
  EwsListenerBacklogError,
  EwsCheckpointError,
  EwsCheckpointLockedError,
  EwsProtocolError,
  EwsContentEncodingError,
  EwsLeaseLostError,
  type EwsBridgeErrorCode,
  type EwsErrorDetails,
  type ResponseCodeAction,
  type CheckpointLockHolder,
} from './errors.js';
