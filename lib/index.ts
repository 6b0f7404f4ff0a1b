/**
 * ews-push-bridge: EWS streaming and pull notifications as RxJS observables, delivered through
 * adapters that keep the legacy push-notification contract.
 *
 * @packageDocumentation
 */
export * from './model.js';
export * from './errors.js';
export * from './logger.js';
export * from './ews/messages.js';
export * from './ews/response-codes.js';
export * from './ews/parser.js';
export * from './ews/requests.js';
export * from './ews/send-notification.js';
export * from './checkpoint/checkpoint-store.js';
export * from './checkpoint/memory-store.js';
export * from './checkpoint/file-store.js';
