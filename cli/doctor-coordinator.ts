/**
 * The doctor's checks of a `coordinator` (several `forward` processes sharing mailboxes through
 * Redis leases): that its Redis answers with these credentials and is recent enough, that this
 * user may run the coordinator's scripts, and how the lease group looks from here — how many
 * workers are live, and whether their mailbox lists match this configuration's.
 *
 * @packageDocumentation
 */
import type { CoordinatorConfig } from './config.js';
import type { DoctorCheck } from './doctor-check.js';
import { connectRedis, loadIoredis, redisRefused, type RedisConnection, type RedisImporter } from './redis-peer.js';

/** Options of {@link coordinatorChecks}. */
export interface CoordinatorCheckOptions {
  /** The mailboxes this configuration forwards (the resources its workers list). */
  readonly mailboxes: readonly string[];
  /** Bound on connecting and on each command. */
  readonly stepTimeoutMs: number;
  /** Loads ioredis (tests inject a failing one). Default: `import('ioredis')`. */
  readonly importRedis?: RedisImporter;
}

/** The lowest Redis the coordinator's scripts run on: they read the server clock before writing (effects replication, the default since 5). */
const MIN_REDIS_MAJOR = 5;

/** Live workers and the shared resources, read in one script (which proves the user may run scripts). */
const INSPECT = `
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {redis.call('ZCOUNT', P .. ':workers', '(' .. now, '+inf'), redis.call('SMEMBERS', P .. ':all')}
`;

const REDIS = { id: 'redis', title: "Coordinator's Redis" } as const;
const LEASES = { id: 'leases', title: 'Lease group' } as const;

/** A few names of a list, for a detail line. */
function some(names: readonly string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}

/**
 * Runs the coordinator's checks (`redis`, `leases`); never throws. The connection is closed before
 * it resolves.
 */
export async function coordinatorChecks(coordinator: CoordinatorConfig, options: CoordinatorCheckOptions): Promise<DoctorCheck[]> {
  let Redis;
  try {
    Redis = await loadIoredis(options.importRedis);
  } catch (error) {
    return [
      { ...REDIS, status: 'fail', detail: error instanceof Error ? error.message : String(error), fix: 'npm install ioredis beside ews-push-bridge' },
      { ...LEASES, status: 'skip', detail: 'no Redis client' },
    ];
  }
  const redis: RedisConnection = new Redis(coordinator.url, { lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: options.stepTimeoutMs, connectionName: 'ews-push-bridge-doctor' });
  try {
    return await checksOn(redis, coordinator, options);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

async function checksOn(redis: RedisConnection, coordinator: CoordinatorConfig, options: CoordinatorCheckOptions): Promise<DoctorCheck[]> {
  try {
    await connectRedis(redis, coordinator, options.stepTimeoutMs, 'the doctor’s step timeout');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return [
      {
        ...REDIS,
        status: 'fail',
        detail: message,
        fix: redisRefused(message)
          ? `check the user name and password in the Redis URL (${coordinator.urlField})`
          : `check the URL (${coordinator.urlField}), that Redis is running and reachable from here, and the firewall`,
      },
      { ...LEASES, status: 'skip', detail: 'Redis not reached' },
    ];
  }
  const info = await redis.info('server').catch(() => '');
  const version = /^redis_version:(\S+)/m.exec(info)?.[1];
  const major = version === undefined ? undefined : Number.parseInt(version, 10);
  const where = `${coordinator.urlField}, prefix ${coordinator.prefix}`;
  if (major !== undefined && major < MIN_REDIS_MAJOR) {
    return [
      { ...REDIS, status: 'fail', detail: `Redis ${version} answers (${where})`, fix: `the coordinator needs Redis ${MIN_REDIS_MAJOR} or later` },
      { ...LEASES, status: 'skip', detail: 'Redis too old' },
    ];
  }
  return [
    { ...REDIS, status: 'pass', detail: `${version === undefined ? 'Redis' : `Redis ${version}`} answers (${where})` },
    await leaseGroupCheck(redis, coordinator.prefix, options.mailboxes),
  ];
}

/** The lease group as this configuration sees it: script rights, live workers, whether their lists match. */
async function leaseGroupCheck(redis: RedisConnection, prefix: string, mailboxes: readonly string[]): Promise<DoctorCheck> {
  let reply: unknown;
  try {
    reply = await redis.eval(INSPECT, 0, prefix);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ...LEASES,
      status: 'fail',
      detail: `cannot run the coordinator's scripts: ${message}`,
      fix: redisRefused(message)
        ? `allow this Redis user to run scripts on the coordinator's keys: ACL SETUSER <user> +@scripting ~${prefix}:*`
        : 'check that this Redis runs Lua scripts (EVAL, EVALSHA)',
    };
  }
  const [live, shared] = Array.isArray(reply) ? (reply as [unknown, unknown]) : [0, []];
  const workers = Number(live);
  const inRedis = new Set(Array.isArray(shared) ? shared.map(String) : []);
  const here = new Set(mailboxes);
  const onlyHere = [...here].filter((m) => !inRedis.has(m));
  const onlyThere = [...inRedis].filter((m) => !here.has(m));
  if (workers === 0) return { ...LEASES, status: 'pass', detail: `no live worker yet (this configuration lists ${here.size})` };
  const group = `${workers} live worker${workers === 1 ? '' : 's'}, ${inRedis.size} mailbox${inRedis.size === 1 ? '' : 'es'} shared; this configuration lists ${here.size}`;
  if (onlyHere.length === 0 && onlyThere.length === 0) return { ...LEASES, status: 'pass', detail: group };
  const differences = [
    ...(onlyHere.length > 0 ? [`not listed by any live worker: ${some(onlyHere)}`] : []),
    ...(onlyThere.length > 0 ? [`listed by a live worker but not here: ${some(onlyThere)}`] : []),
  ];
  return {
    ...LEASES,
    status: 'warn',
    detail: `${group}; ${differences.join('; ')}`,
    fix: 'expected during a rolling change of the mailbox list (docs/coordination.md); otherwise give every process the same mailboxes, or another coordinator.prefix',
  };
}
