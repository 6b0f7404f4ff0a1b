/**
 * The Redis store and coordinator ship in `ews-push-bridge/redis` without making ioredis a runtime
 * dependency: the built package never imports it (users pass their own client).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(`${root}/dist/index.js`) && existsSync(`${root}/dist/index.cjs`);

function run(code: string, type: 'module' | 'commonjs'): string {
  const flag = type === 'module' ? '--input-type=module' : '--input-type=commonjs';
  return execFileSync(process.execPath, [flag, '-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

const fakeClient = `{ evalsha: async () => { throw new Error('NOSCRIPT'); }, eval: async () => [1] }`;

describe.skipIf(!built)('package exports: Redis coordination (built output)', () => {
  it('never imports ioredis', () => {
    for (const file of ['dist/index.js', 'dist/index.cjs', 'dist/library.js', 'dist/library.cjs', 'dist/redis.js', 'dist/redis.cjs']) {
      const code = readFileSync(`${root}/${file}`, 'utf8');
      expect(code, file).not.toMatch(/(?:require\(|from\s*|import\()\s*["']ioredis["']/);
    }
  });

  it('works from import and require with a client of the caller', () => {
    const body = `
      const store = new m.RedisCheckpointStore({ redis: ${fakeClient} });
      const c = new m.RedisLeaseCoordinator({ redis: ${fakeClient}, resources: ['a@x'], onOwned() {} });
      store.set('k', { watermark: 'w' }).then(() => console.log(typeof e.EwsLeaseLostError, c.stats().owned, new e.EwsLeaseLostError('a@x', 1, 2).code));`;
    expect(run(`import * as m from 'ews-push-bridge/redis'; import * as e from 'ews-push-bridge/errors'; ${body}`, 'module')).toBe(
      'function 0 EWS_LEASE_LOST',
    );
    expect(run(`const m = require('ews-push-bridge/redis'); const e = require('ews-push-bridge/errors'); ${body}`, 'commonjs')).toBe(
      'function 0 EWS_LEASE_LOST',
    );
  });
});
