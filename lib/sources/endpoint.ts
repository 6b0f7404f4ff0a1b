/**
 * How a source reaches EWS: its connection pool (with the TLS settings), and the endpoint options
 * every call of its subscription shares — credentials, anchor mailbox, extra headers and the
 * subscription's server affinity.
 */
import type { Agent } from 'node:http';
import { EwsBridgeError, EwsConnectionError } from '../errors.js';
import { AFFINITY_HEADERS, SubscriptionAffinity } from '../ews/affinity.js';
import { SOAP_ACTIONS, buildUnsubscribeRequest } from '../ews/requests.js';
import { envelopeError } from '../ews/response-errors.js';
import type { EwsEnvelope, ResponseMessage } from '../ews/messages.js';
import { streamingSubscribeSuccessId } from '../ews/subscribe-answer.js';
import { createEwsAgent, postSoap, postSoapRecognizing, type EwsEndpointOptions, type PostSoapOptions, type SoapRequest } from '../ews/transport.js';
import type { ResolvedConnectionOptions, ResolvedSourceOptions } from './options.js';

/** What {@link sourceEndpoint} builds for one subscriber. */
export interface SourceEndpoint {
  /** The subscriber's own pool: the source destroys it at teardown. */
  readonly agent: Agent;
  /** Options for every call of the subscription (Subscribe, GetEvents, GetStreamingEvents, Unsubscribe). */
  readonly endpoint: EwsEndpointOptions;
  /** The subscription's affinity cookie, when `affinity` is on: reset it when the subscription is lost. */
  readonly affinity: SubscriptionAffinity | undefined;
}

/** Builds the pool and the shared endpoint options of one subscriber. */
export function sourceEndpoint(options: ResolvedConnectionOptions): SourceEndpoint {
  const agent =
    options.createAgent?.() ?? createEwsAgent({ url: options.url, logger: options.logger, ...(options.tls === undefined ? {} : { tls: options.tls }) });
  const affinity = options.affinity ? new SubscriptionAffinity(options.cookies) : undefined;
  const headers = options.affinity ? { ...options.headers, ...AFFINITY_HEADERS } : options.headers;
  const cookies = affinity ?? options.cookies;
  const endpoint: EwsEndpointOptions = {
    url: options.url,
    auth: options.auth,
    agent,
    logger: options.logger,
    ...(options.anchorMailbox === undefined ? {} : { mailbox: options.anchorMailbox }),
    ...(headers === undefined ? {} : { headers }),
    ...(cookies === undefined ? {} : { cookies }),
    ...(options.maxEnvelopeBytes === undefined ? {} : { maxEnvelopeBytes: options.maxEnvelopeBytes }),
  };
  return { agent, endpoint, affinity };
}

/**
 * Posts one SOAP call and returns the first response message of its answer (the caller checks its
 * kind); throws the typed error the answer carries (a SOAP fault, an EWS error code).
 */
export async function firstMessage(request: SoapRequest, options: PostSoapOptions): Promise<ResponseMessage | undefined> {
  return firstMessageOf(await postSoap(request, options));
}

/** The first response message of a parsed answer; throws the typed error the answer carries. */
function firstMessageOf(response: EwsEnvelope): ResponseMessage | undefined {
  const error = envelopeError(response);
  if (error) throw error;
  const body = response.body;
  return body.type === 'response' ? body.messages[0] : undefined;
}

/**
 * Sends a streaming Subscribe and returns the new subscription's id; typed errors for an EWS error
 * or an answer without an id. Not abortable on purpose: once the request is out the server may have
 * created the subscription, and only its id lets teardown remove it (`requestTimeoutMs` bounds it).
 */
export function postStreamingSubscribe(request: SoapRequest, endpoint: EwsEndpointOptions, requestTimeoutMs: number): Promise<string> {
  // Exchange's usual success answer is recognised by its text; any other is parsed (subscribe-answer.ts).
  return postSoapRecognizing(request, { ...endpoint, requestTimeoutMs }, streamingSubscribeSuccessId, subscriptionIdOf);
}

/** The subscription id of a parsed Subscribe answer; typed errors for an EWS error or an answer without one. */
function subscriptionIdOf(response: EwsEnvelope): string {
  const message = firstMessageOf(response);
  const subscriptionId = message?.kind === 'Subscribe' ? message.subscriptionId : undefined;
  if (subscriptionId === undefined) throw new EwsConnectionError('The Subscribe response carried no SubscriptionId');
  return subscriptionId;
}

/**
 * A best-effort EWS Unsubscribe of `subscriptionId`, bounded by `unsubscribeTimeoutMs`. Never
 * throws: a failure is only logged, since the subscription expires on the server by itself.
 */
export async function unsubscribeQuietly(
  subscriptionId: string,
  endpoint: EwsEndpointOptions,
  options: Pick<ResolvedSourceOptions, 'requestServerVersion' | 'impersonation' | 'unsubscribeTimeoutMs' | 'logger'>,
): Promise<void> {
  try {
    const envelope = buildUnsubscribeRequest({
      subscriptionId,
      requestServerVersion: options.requestServerVersion,
      ...(options.impersonation ? { impersonation: options.impersonation } : {}),
    });
    const response = await postSoap({ soapAction: SOAP_ACTIONS.Unsubscribe, envelope }, { ...endpoint, requestTimeoutMs: options.unsubscribeTimeoutMs });
    const error = envelopeError(response);
    if (error) options.logger.debug('EWS Unsubscribe answered with an error', { subscriptionId, responseCode: error.responseCode });
    else options.logger.debug('EWS Unsubscribe done', { subscriptionId });
  } catch (error) {
    const code = error instanceof EwsBridgeError ? error.code : error instanceof Error ? error.name : typeof error;
    options.logger.debug('EWS Unsubscribe failed (best effort)', { subscriptionId, error: code });
  }
}

/**
 * A source's last act: a best-effort EWS Unsubscribe of `subscriptionId` (when there is one), then
 * the pool is destroyed. Never throws.
 */
export async function unsubscribeAndClose(
  subscriptionId: string | undefined,
  { agent, endpoint }: SourceEndpoint,
  options: ResolvedSourceOptions,
): Promise<void> {
  try {
    if (subscriptionId !== undefined) await unsubscribeQuietly(subscriptionId, endpoint, options);
  } finally {
    agent.destroy();
  }
}
