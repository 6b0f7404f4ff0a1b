/**
 * Turning parsed EWS error shapes (a SOAP fault, a response message with `ResponseClass="Error"`)
 * into the typed errors of `errors.ts`, with `BackOffMilliseconds` read out.
 */
import { EwsResponseError, EwsSoapFaultError } from '../errors.js';
import type { EwsEnvelope, ResponseMessage, SoapFault } from './messages.js';
import { responseCodeInfo } from './response-codes.js';
import { backOffMsFrom } from './retry-after.js';

/** `a:ErrorSchemaValidation` → `ErrorSchemaValidation`; `soap:Server` → `Server`. */
function localName(qname: string): string {
  const colon = qname.lastIndexOf(':');
  return colon === -1 ? qname : qname.slice(colon + 1);
}

/**
 * The typed error for a SOAP fault. The EWS `ResponseCode` from the fault detail decides what the
 * error means (via the response-code table); without a detail, the fault code's local name is used.
 */
export function soapFaultError(fault: SoapFault): EwsSoapFaultError {
  const backOffMs = backOffMsFrom(fault.messageXml);
  const messageText = fault.messageText ?? fault.faultString;
  const responseCode = fault.responseCode ?? localName(fault.faultCode);
  return new EwsSoapFaultError(fault.faultCode, {
    responseCode,
    action: responseCodeInfo(responseCode).action,
    ...(messageText ? { messageText } : {}),
    ...(backOffMs === undefined ? {} : { backOffMs }),
  });
}

/**
 * The typed error for a response message with `ResponseClass="Error"`, or `undefined` for a Success
 * or Warning message. Streaming messages carry their `ErrorSubscriptionIds` into `subscriptionIds`.
 */
export function responseMessageError(message: ResponseMessage): EwsResponseError | undefined {
  if (message.responseClass !== 'Error') return undefined;
  const backOffMs = backOffMsFrom(message.messageXml);
  const subscriptionIds =
    message.kind === 'GetStreamingEvents' && message.errorSubscriptionIds.length > 0 ? message.errorSubscriptionIds : undefined;
  return new EwsResponseError({
    responseCode: message.responseCode,
    action: responseCodeInfo(message.responseCode).action,
    ...(message.messageText ? { messageText: message.messageText } : {}),
    ...(backOffMs === undefined ? {} : { backOffMs }),
    ...(subscriptionIds ? { subscriptionIds } : {}),
  });
}

/**
 * The first error an envelope carries: its SOAP fault, else its first `ResponseClass="Error"`
 * message. `undefined` when the envelope is a success (or only warnings).
 */
export function envelopeError(envelope: EwsEnvelope): EwsResponseError | undefined {
  const body = envelope.body;
  if (body.type === 'fault') return soapFaultError(body.fault);
  if (body.type !== 'response') return undefined;
  for (const message of body.messages) {
    const error = responseMessageError(message);
    if (error) return error;
  }
  return undefined;
}
