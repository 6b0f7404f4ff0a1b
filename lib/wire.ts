/**
 * `ews-push-bridge/wire`: the EWS wire layer under the sources, for advanced uses (a request the
 * sources do not make, a listener of your own, tests against recorded traffic). It holds the
 * incremental SOAP envelope parser and the typed envelopes it returns, the request builders, the
 * `SendNotification` builders of the push contract, the response-code table and the errors built
 * from it, the SOAP transport (`postSoap`, `openStream`), server affinity, `Retry-After`, and the
 * NTLM message codec.
 *
 * Applications normally need only the main entry (`ews-push-bridge`), whose errors and model types
 * these functions share: an error thrown here is `instanceof` the main entry's class. This surface
 * is recorded in `api/ews-push-bridge-wire.api.md`, checked by `npm test`.
 *
 * @packageDocumentation
 */

// Typed envelopes and the parser that produces them.
export type {
  EwsEnvelope,
  EwsBody,
  SoapFault,
  ServerVersionInfo,
  ResponseClass,
  ResponseMessage,
  ResponseMessageBase,
  SubscribeMessage,
  GetStreamingEventsMessage,
  GetEventsMessage,
  UnsubscribeMessage,
  SyncFolderItemsMessage,
  SyncItemChange,
  SendNotificationMessage,
  OtherMessage,
} from './ews/messages.js';
export { EnvelopeParser, parseEnvelope, DEFAULT_MAX_ENVELOPE_BYTES, type EnvelopeParserOptions } from './ews/parser.js';

// Request builders.
export {
  SOAP_ACTIONS,
  EXCHANGE_VERSIONS,
  buildStreamingSubscribeRequest,
  buildPullSubscribeRequest,
  buildPushSubscribeRequest,
  buildGetStreamingEventsRequest,
  buildGetEventsRequest,
  buildUnsubscribeRequest,
  buildSyncFolderItemsRequest,
  type EwsOperation,
  type ImpersonationTarget,
  type EwsRequestOptions,
  type SubscriptionScopeOptions,
  type StreamingSubscribeRequestOptions,
  type PullSubscribeRequestOptions,
  type PushSubscribeRequestOptions,
  type GetStreamingEventsRequestOptions,
  type GetEventsRequestOptions,
  type UnsubscribeRequestOptions,
  type SyncFolderItemsRequestOptions,
} from './ews/requests.js';

// The push contract's SendNotification request and the listener's answer.
export {
  buildSendNotification,
  buildSendNotificationError,
  buildSendNotificationResult,
  type SendNotificationOptions,
  type SendNotificationErrorOptions,
} from './ews/send-notification.js';

// Response codes and the errors built from envelopes.
export { RESPONSE_CODES, UNKNOWN_ERROR_CODE_INFO, responseCodeInfo, type ResponseCodeInfo } from './ews/response-codes.js';
export { envelopeError, responseMessageError, soapFaultError } from './ews/response-errors.js';
export { parseRetryAfter } from './ews/retry-after.js';

// The SOAP transport and server affinity.
export {
  postSoap,
  openStream,
  createEwsAgent,
  type SoapRequest,
  type EwsEndpointOptions,
  type PostSoapOptions,
  type OpenStreamOptions,
  type StreamOpenInfo,
  type StreamEnd,
  type EwsAgentOptions,
} from './ews/transport.js';
export { SubscriptionAffinity, BACKEND_COOKIE, AFFINITY_HEADERS } from './ews/affinity.js';

// NTLM messages (MS-NLMP), with the channel binding of Extended Protection.
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
