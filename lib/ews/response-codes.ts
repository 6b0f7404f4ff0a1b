/**
 * What each EWS response code means for a caller, in one table (not in scattered `if`s).
 * Sources: Microsoft's EWS reference (ResponseCode, Subscribe, GetEvents, GetStreamingEvents) and
 * the notification/throttling guidance summarised in DESIGN.md.
 */

/**
 * What a caller should do about a response code.
 * - `ok`: success.
 * - `backoff`: the server is busy; wait (`BackOffMilliseconds` when given) and retry the same call.
 * - `retry`: a transient failure; retry with the usual exponential back-off.
 * - `resubscribe`: the subscription is gone on the server; create a new one (pull: from the last
 *   watermark), then carry on.
 * - `resubscribe-without-watermark`: as `resubscribe`, but the watermark is unusable: start fresh
 *   and report the gap.
 * - `rediscover`: the mailbox moved; find its new server (Autodiscover), then resubscribe.
 * - `recover-missed`: the server dropped events but the subscription is alive; resync, keep going.
 * - `connection-taken`: another client opened a stream for our subscription; surface it.
 * - `fatal`: retrying cannot help (access denied, bad request, quota exceeded); stop and report.
 */
export type ResponseCodeAction =
  | 'ok'
  | 'backoff'
  | 'retry'
  | 'resubscribe'
  | 'resubscribe-without-watermark'
  | 'rediscover'
  | 'recover-missed'
  | 'connection-taken'
  | 'fatal';

/** One row of the table. */
export interface ResponseCodeInfo {
  readonly action: ResponseCodeAction;
  /** Whether doing the same thing again (after the action) may succeed. */
  readonly retriable: boolean;
  /** A sentence a person can act on. */
  readonly description: string;
}

const row = (action: ResponseCodeAction, description: string): ResponseCodeInfo => ({
  action,
  retriable: action !== 'fatal',
  description,
});

/** The table: EWS `ResponseCode` → what to do. Codes not listed fall back to {@link UNKNOWN_ERROR_CODE_INFO}. */
export const RESPONSE_CODES: Readonly<Record<string, ResponseCodeInfo>> = {
  NoError: row('ok', 'Success.'),
  ErrorServerBusy: row('backoff', 'The server is throttling this account; wait BackOffMilliseconds, then retry.'),
  ErrorTimeoutExpired: row('retry', 'The request timed out on the server.'),
  ErrorInternalServerTransientError: row('retry', 'A transient server error.'),
  ErrorMailboxStoreUnavailable: row('retry', 'The mailbox database is temporarily unavailable.'),
  ErrorConnectionFailed: row('retry', 'The server could not reach the mailbox server.'),
  ErrorInternalServerError: row('retry', 'The server failed internally.'),
  ErrorSubscriptionNotFound: row('resubscribe', 'The server does not know this subscription (expired, moved or lost affinity).'),
  ErrorInvalidSubscription: row('resubscribe', 'The subscription is invalid on this server.'),
  ErrorExpiredSubscription: row('resubscribe', 'The subscription expired (pull: GetEvents was not called within its timeout).'),
  ErrorReadEventsFailed: row('resubscribe', 'The server could not read the event queue of this subscription.'),
  ErrorSubscriptionDelegateAccessNotSupported: row('fatal', 'Subscriptions through delegate access are not supported; use impersonation.'),
  ErrorInvalidWatermark: row('resubscribe-without-watermark', 'The watermark is unknown or too old; events since it may be lost.'),
  ErrorProxyRequestNotAllowed: row('rediscover', 'The mailbox is now served from another site; rediscover its EWS URL.'),
  ErrorMailboxMoveInProgress: row('rediscover', 'The mailbox is being moved; rediscover, then resubscribe.'),
  ErrorMissedNotificationEvents: row('recover-missed', 'The server dropped events for this subscription; resync, it stays alive.'),
  ErrorNewEventStreamConnectionOpened: row('connection-taken', 'Another GetStreamingEvents connection took over this subscription.'),
  ErrorExceededConnectionCount: row('backoff', 'Too many concurrent streaming connections for this account (HangingConnectionLimit).'),
  ErrorExceededSubscriptionCount: row('fatal', 'Too many subscriptions for this account (EWSMaxSubscriptions).'),
  ErrorTooManyObjectsOpened: row('backoff', 'Too many objects opened by this account; back off.'),
  ErrorAccessDenied: row('fatal', 'The account may not access this mailbox or folder.'),
  ErrorImpersonateUserDenied: row('fatal', 'The account has no impersonation right for this mailbox.'),
  ErrorImpersonationDenied: row('fatal', 'The account has no impersonation right.'),
  ErrorNonExistentMailbox: row('fatal', 'The mailbox does not exist.'),
  ErrorFolderNotFound: row('fatal', 'The folder does not exist.'),
  ErrorInvalidRequest: row('fatal', 'The server rejected the request as malformed.'),
  ErrorSchemaValidation: row('fatal', 'The request does not match the EWS schema.'),
  ErrorInvalidServerVersion: row('fatal', 'The server does not support the requested RequestServerVersion.'),
  ErrorInvalidPullSubscriptionId: row('resubscribe', 'The pull subscription id is not valid.'),
  ErrorInvalidPushSubscriptionUrl: row('fatal', 'The push callback URL is not valid.'),
  ErrorInvalidSyncStateData: row('resubscribe-without-watermark', 'The sync state is invalid; a full resync is needed.'),
  ErrorInvalidArgument: row('fatal', 'An argument of the request is invalid.'),
};

/** What an unknown `Error*` code is treated as: retriable with back-off, never silently fatal. */
export const UNKNOWN_ERROR_CODE_INFO: ResponseCodeInfo = row('retry', 'An EWS error this library does not know.');

/** Looks a response code up in {@link RESPONSE_CODES}. */
export function responseCodeInfo(code: string): ResponseCodeInfo {
  return RESPONSE_CODES[code] ?? UNKNOWN_ERROR_CODE_INFO;
}
