/**
 * Test helpers for apps migrating to ews-push-bridge: a protocol-faithful Exchange simulator.
 *
 * @packageDocumentation
 */
export {};
