/**
 * `ews-push-bridge/autodiscover`: the EWS URL of each mailbox (Autodiscover's SOAP
 * GetUserSettings, batched, with the POX fallback and checked redirects), and
 * {@link groupMailboxesByServer} to put the mailboxes that share a server in one
 * `StreamingGroup`. Recorded in `api/ews-push-bridge-autodiscover.api.md`.
 *
 * @packageDocumentation
 */
export {
  autodiscover,
  groupMailboxesByServer,
  type AutodiscoverOptions,
  type AutodiscoverOutcome,
  type AutodiscoverResult,
  type AutodiscoverRedirect,
  type MailboxGroup,
} from './ews/autodiscover.js';
