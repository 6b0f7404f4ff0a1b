// Type-checked by test/package-exports.test.ts as a CommonJS consumer of the built package.
import bridge = require('ews-push-bridge');
import callback = require('ews-push-bridge/adapters/push-callback');
import testing = require('ews-push-bridge/testing');
import wire = require('ews-push-bridge/wire');
import errors = require('ews-push-bridge/errors');
import redis = require('ews-push-bridge/redis');
import types = require('ews-push-bridge/types');

const n: bridge.PushNotification = { subscriptionId: 's', moreEvents: false, events: [{ type: 'Status' }] };
const e: errors.EwsHttpError = new errors.EwsHttpError(503);
const base: bridge.EwsBridgeError = e;
const connected: types.ConnectedEvent['type'] = 'connected';
const leases: typeof redis.RedisLeaseCoordinator = redis.RedisLeaseCoordinator;
const handler: callback.PushHandler = () => 'OK';
const group: bridge.StreamingGroup = new bridge.StreamingGroup({ url: 'http://127.0.0.1:1/EWS/Exchange.asmx', maxSubscriptionsPerConnection: 200 });
const stats: bridge.StreamingGroupStats = group.stats();
const envelope: wire.EwsEnvelope = wire.parseEnvelope('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>');
const action: errors.ResponseCodeAction = wire.responseCodeInfo('ErrorServerBusy').action;
export const checked: [string, boolean, unknown, unknown, number, unknown, string, unknown] = [
  n.subscriptionId,
  e.retriable,
  handler,
  testing.sequenceOf,
  stats.connections,
  envelope.body,
  action,
  [base, connected, leases],
];
