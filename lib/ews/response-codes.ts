/**
 * What each EWS response code means for a caller, in one table (not in scattered `if`s).
 * Sources: Microsoft's EWS reference (ResponseCode, Subscribe, GetEvents, GetStreamingEvents) and
 * its notification and throttling guidance; docs/retry-and-gaps.md tells what the sources do with
 * each action. The actions themselves ({@link ResponseCodeAction}) are defined with the errors that
 * carry them (`errors.ts`): this table is the wire layer's knowledge of codes, the errors know none.
 */

import type { ResponseCodeAction } from '../errors.js';

/** One row of the table. */
export interface ResponseCodeInfo {
  /** What to do about the code. */
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
