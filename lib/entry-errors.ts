/**
 * `ews-push-bridge/errors`: every error class of the library. Each is an {@link EwsBridgeError}
 * with a stable `code` (match on it, not on the message) and a `retriable` flag; the main entry
 * exports the base class and the codes, this entry every subclass for `instanceof` and for the
 * details some carry (`EwsHttpError.status`, `EwsResponseError.responseCode`,
 * `EwsCheckpointLockedError.holder`, …). The classes are the same objects whichever entry they are
 * imported from. Recorded in `api/ews-push-bridge-errors.api.md`, checked by `npm test`.
 *
 * @packageDocumentation
 */
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
