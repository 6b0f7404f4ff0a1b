/**
 * The runnable examples that need nothing but the simulator are run as a reader would run them
 * (`npx tsx examples/…`), so the README's examples cannot rot: each asserts its own outcome and
 * exits non-zero when it fails.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli-process.js';

const run = promisify(execFile);
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

describe('examples', () => {
  it.each(['many-mailboxes.ts', 'simulator-quickstart.ts', 'ews-javascript-api-streaming.ts'])('%s runs to its end against the simulator', async (example) => {
    const { stdout, stderr } = await run(TSX, [join(ROOT, 'examples', example)], { cwd: ROOT, timeout: 60_000 });
    expect(stderr).toBe('');
    expect(stdout.length).toBeGreaterThan(0);
  }, 90_000);
});
