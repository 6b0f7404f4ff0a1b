/**
 * ews-push-bridge: EWS streaming and pull notifications as RxJS observables, delivered through
 * adapters that keep the legacy push-notification contract.
 *
 * @packageDocumentation
 */
export * from './model.js';
export * from './errors.js';
export * from './logger.js';
export * from './ews/messages.js';
export * from './ews/response-codes.js';
export * from './ews/parser.js';
export * from './ews/requests.js';
export * from './ews/send-notification.js';
export * from './checkpoint/checkpoint-store.js';
export * from './checkpoint/memory-store.js';
export * from './checkpoint/file-store.js';
export * from './checkpoint/redis-store.js';
export type { RedisScriptClient } from './coordination/redis-client.js';
export * from './coordination/lease-coordinator.js';
export {
  postSoap,
  openStream,
  createEwsAgent,
  type SoapRequest,
  type CookieJar,
  type EwsEndpointOptions,
  type PostSoapOptions,
  type OpenStreamOptions,
  type StreamOpenInfo,
  type StreamEnd,
  type EwsAgentOptions,
} from './ews/transport.js';
export type { EwsAuth, BasicAuth, BearerAuth, NoAuth, NtlmAuth, NegotiateAuth, Authorizer, AuthContext } from './ews/auth-header.js';
export type { EwsTlsOptions, TlsMaterial } from './ews/tls.js';
export { SubscriptionAffinity, BACKEND_COOKIE, AFFINITY_HEADERS } from './ews/affinity.js';
export { envelopeError, responseMessageError, soapFaultError } from './ews/response-errors.js';
export {
  autodiscover,
  groupMailboxesByServer,
  type AutodiscoverOptions,
  type AutodiscoverOutcome,
  type AutodiscoverResult,
  type AutodiscoverRedirect,
  type MailboxGroup,
} from './ews/autodiscover.js';
export {
  negotiateMessage,
  parseChallengeMessage,
  authenticateMessage,
  fileTimeNow,
  tlsServerEndPoint,
  endPointHashAlgorithm,
  channelBindingsHash,
  NtlmMessageError,
  type NtlmChallenge,
  type AuthenticateInput,
  type AuthenticateMessage,
  type AvPair,
} from './ews/ntlm-messages.js';
export { parseRetryAfter } from './ews/retry-after.js';
export { EwsStreamCutError } from './ews/stream-cut-error.js';
export * from './sources/lifecycle.js';
export type { RetryOptions } from './sources/backoff.js';
export type { SourceOptions } from './sources/options.js';
export { streamingNotifications, streamingSignals, type StreamingOptions } from './sources/streaming.js';
export type { GapRecoveryOptions } from './sources/gap-recovery.js';
export { pullNotifications, pullSignals, type PullOptions } from './sources/pull.js';
export { hybridNotifications, hybridSignals, type HybridOptions } from './sources/hybrid.js';
export { deferAck, type AckFunction, type AckMode } from './sources/ack.js';
export { sourceClosed } from './sources/source-closed.js';
export {
  StreamingGroup,
  type StreamingGroupOptions,
  type StreamingGroupMemberOptions,
  type StreamingGroupStats,
} from './sources/streaming-group.js';
