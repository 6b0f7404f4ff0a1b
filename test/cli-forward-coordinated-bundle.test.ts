/**
 * The built bin (dist/cli.cjs) and its optional peer `ioredis`: loaded only when `forward` runs
 * with a coordinator; without it installed (hidden by test/fixtures/hide-ioredis) the command
 * says EWS_PEER_MISSING's fix and exits 1, while `--check` and every other path still work; with
 * it, the bundle's lazy import reaches Redis (here: down, exit 4). Skipped when dist/ is not built.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/redis-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist/cli.cjs');
const built = existsSync(bin) && existsSync(join(root, 'dist/index.cjs'));
const hide = join(root, 'test/fixtures/hide-ioredis/register.mjs');
const dir = mkdtempSync(join(tmpdir(), 'ews-cli-coordinated-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: readonly string[], nodeArgs: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeArgs, bin, ...args], { cwd: dir, env: { ...process.env, EWS_PASSWORD: 'x', NO_COLOR: '1' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(!built)('forward --coordinator from the built bin', { timeout: 120_000 }, () => {
  it('loads ioredis only with a coordinator, and says EWS_PEER_MISSING’s fix when it is not installed', async () => {
    const port = await freePort();
    const file = join(dir, 'bridge.json');
    writeFileSync(
      file,
      JSON.stringify({
        ews: { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', auth: { type: 'basic', username: 'svc@contoso.com', passwordEnv: 'EWS_PASSWORD' }, startupTimeoutSeconds: 5 },
        mode: 'pull',
        mailboxes: ['alice@contoso.com', 'bob@contoso.com'],
        listener: { url: 'http://127.0.0.1:9/listener' },
        coordinator: { url: `redis://127.0.0.1:${port}` },
      }),
    );
    const hidden = ['--import', hide];
    const check = await run(['forward', '--config', file, '--check'], hidden);
    expect(check.stderr).toBe('');
    expect(check.stdout).toContain(`OK (pull, 2 mailboxes, shared through redis://127.0.0.1:${port})`);
    expect((await run(['forward', '--help'], hidden)).stdout).toContain('--coordinator URL');

    const missing = await run(['forward', '--config', file], hidden);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('forward with a coordinator needs the optional peer dependency ioredis');
    expect(missing.stderr).toContain('npm install ioredis');

    // Installed: the bundle's lazy import works, and a Redis that is down is exit 4.
    const down = await run(['forward', '--config', file]);
    expect(down.code).toBe(4);
    expect(down.stderr).toContain(`Cannot reach the coordinator's Redis at redis://127.0.0.1:${port} (coordinator.url)`);
  });
});
