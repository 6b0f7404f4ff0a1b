/**
 * examples/redis-workers.ts run as a reader would run it, against a real redis-server started here
 * (skipped with a message when redis-server is not installed).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli-process.js';
import { redisServerMissing, startRedisServer, type RedisServer } from './helpers/redis-server.js';

const run = promisify(execFile);
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const missing = redisServerMissing();
if (missing !== undefined) console.warn(missing);

describe.skipIf(missing !== undefined)('examples with Redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('redis-workers.ts hands mailboxes from a closing worker to another without losing mail', async () => {
    const { stdout, stderr } = await run(TSX, [join(ROOT, 'examples', 'redis-workers.ts')], {
      cwd: ROOT,
      timeout: 120_000,
      env: { ...process.env, REDIS_URL: server.url },
    });
    expect(stderr).toBe('');
    expect(stdout).toMatch(/60 events sent, 60 received across the hand-over/);
  }, 150_000);
});
