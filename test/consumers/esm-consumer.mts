// Type-checked by test/package-exports.test.ts as an ES module consumer of the built package.
import { EwsBridgeError, streamingSignals, type PushNotification } from 'ews-push-bridge';
import { EwsHttpError, type ResponseCodeAction } from 'ews-push-bridge/errors';
import { parseEnvelope, responseCodeInfo, type EwsEnvelope, type ResponseCodeInfo } from 'ews-push-bridge/wire';
import { pushCallback, type PushHandler } from 'ews-push-bridge/adapters/push-callback';
import { soapForwarder } from 'ews-push-bridge/adapters/soap-forwarder';
import { pushEvents } from 'ews-push-bridge/adapters/event-emitter';
import { EwsSimulator, sequenceOf } from 'ews-push-bridge/testing';
import { RedisCheckpointStore } from 'ews-push-bridge/redis';
import { autodiscover } from 'ews-push-bridge/autodiscover';
import type { GapEvent } from 'ews-push-bridge';
import type { NtlmAuth } from 'ews-push-bridge/types';

const n: PushNotification = { subscriptionId: 's', moreEvents: false, events: [{ type: 'Status' }] };
const e: EwsHttpError = new EwsHttpError(503);
const handler: PushHandler = (notification) => (notification.events.length > 0 ? 'OK' : 'Unsubscribe');
// The wire entry's types and errors are the main entry's.
const info: ResponseCodeInfo = responseCodeInfo('ErrorServerBusy');
const action: ResponseCodeAction = info.action;
const parse: (body: string) => EwsEnvelope = parseEnvelope;
const wireError: unknown = new Error();
const fromWire: boolean = wireError instanceof EwsBridgeError;
export const checked: [string, boolean, unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown] = [
  n.subscriptionId,
  e.retriable,
  handler,
  pushCallback,
  soapForwarder,
  pushEvents,
  streamingSignals,
  [EwsSimulator.start, sequenceOf],
  [action, parse, fromWire],
  [RedisCheckpointStore, autodiscover, ((gap: GapEvent, auth: NtlmAuth) => [gap.eventsMayBeLost, auth.type])],
];
