// Type-checked by test/package-exports.test.ts as a CommonJS consumer of the built package.
import bridge = require('ews-push-bridge');

const n: bridge.PushNotification = { subscriptionId: 's', moreEvents: false, events: [{ type: 'Status' }] };
const e: bridge.EwsHttpError = new bridge.EwsHttpError(503);
export const checked: [string, boolean] = [n.subscriptionId, e.retriable];
