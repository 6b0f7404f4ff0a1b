/**
 * `ews-push-bridge/redis`: many bridge processes sharing mailboxes through Redis. A
 * {@link RedisLeaseCoordinator} grants each live worker a fair share of the mailboxes under leases
 * with fencing tokens; a {@link RedisCheckpointStore} keeps watermarks and sync states, its writes
 * fenced by the writer's lease so a process that lost a mailbox cannot overwrite the new owner's
 * checkpoint. Bring your own client (ioredis or any with `eval`/`evalsha`: {@link RedisScriptClient});
 * the package does not depend on one. Recorded in `api/ews-push-bridge-redis.api.md`.
 *
 * @packageDocumentation
 */
export {
  RedisCheckpointStore,
  FencedCheckpointStore,
  type LeaseFence,
  type RedisCheckpointStoreOptions,
} from './checkpoint/redis-store.js';
export {
  RedisLeaseCoordinator,
  type RedisLeaseCoordinatorOptions,
  type LeaseCoordinatorStats,
  type MailboxLease,
  type LeaseLostReason,
} from './coordination/lease-coordinator.js';
export type { RedisScriptClient } from './coordination/redis-client.js';
