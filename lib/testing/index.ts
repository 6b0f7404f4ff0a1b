/**
 * Test helpers for apps migrating to ews-push-bridge: {@link EwsSimulator}, a protocol-faithful
 * Exchange Web Services server on 127.0.0.1 (`import { EwsSimulator } from 'ews-push-bridge/testing'`).
 *
 * @packageDocumentation
 */
export { EwsSimulator, EWS_PATH, type RecordedRequest } from './simulator.js';
export type { EwsSimulatorOptions } from './options.js';
export { sequenceOf, type SimulatedEvent, type SimulatedFolderEvent, type SimulatedMoveEvent, type DeliveredEvent } from './events.js';
export type { FaultSpec, FaultScope, ServerAction, CallFault } from './faults.js';
export type { SubscriptionInfo, SubscriptionKind } from './subscriptions.js';
export type { PushAttempt } from './push.js';
export type { AuthScheme, TokenVerdict, ExtendedProtection, NegotiateAcceptor, NtlmLogonDetails } from './auth.js';
export { kerberosAcceptor, type KerberosAcceptorOptions } from './negotiate.js';
export { AUTODISCOVER_SOAP_PATH, AUTODISCOVER_POX_PATH, type SimulatedAutodiscover, type SimulatedAutodiscoverUser } from './autodiscover.js';
export {
  SIMULATED_OPERATIONS,
  MAX_STREAMING_SUBSCRIPTION_IDS,
  type SimulatedOperation,
  type EwsRequest,
  type RequestHeader,
  type RequestedFolder,
  type SubscribeRequest,
  type GetEventsRequest,
  type GetStreamingEventsRequest,
  type UnsubscribeRequest,
  type SyncFolderItemsRequest,
} from './request-reader.js';
export { MAX_EVENTS_PER_GET_EVENTS } from './pull.js';
