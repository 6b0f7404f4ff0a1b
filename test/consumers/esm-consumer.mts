// Type-checked by test/package-exports.test.ts as an ES module consumer of the built package.
import { EwsHttpError, type PushNotification } from 'ews-push-bridge';
import type {} from 'ews-push-bridge/testing';

const n: PushNotification = { subscriptionId: 's', moreEvents: false, events: [{ type: 'Status' }] };
const e: EwsHttpError = new EwsHttpError(503);
export const checked: [string, boolean] = [n.subscriptionId, e.retriable];
