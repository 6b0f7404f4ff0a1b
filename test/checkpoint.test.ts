import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as FsPromises from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkpointKey } from '../lib/checkpoint/checkpoint-store.js';
import { FileCheckpointStore } from '../lib/checkpoint/file-store.js';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import { EwsCheckpointError } from '../lib/errors.js';
import { EVENT_TYPES, type EventType } from '../lib/model.js';
import { counterOf } from './children/checkpoint-token.js';
import { storeContract } from './helpers/checkpoint-contract.js';

// Watch rename() to prove writes are serialized (never two renames in flight) and coalesced.
const renames = vi.hoisted(() => ({ calls: 0, inFlight: 0, maxInFlight: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  const rename: typeof fs.rename = async (from, to) => {
    renames.calls += 1;
    renames.inFlight += 1;
    renames.maxInFlight = Math.max(renames.maxInFlight, renames.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1)); // widen the window a race would need
      return await fs.rename(from, to);
    } finally {
      renames.inFlight -= 1;
    }
  };
  return { ...fs, rename, default: { ...fs, rename } };
});

const root = fileURLToPath(new URL('..', import.meta.url));
const writerScript = join(root, 'test/children/checkpoint-writer.ts');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ews-checkpoint-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('checkpointKey', () => {
  it('ignores the order and duplicates of folders and event types, and the case of the mailbox', () => {
    const a = checkpointKey({
      mailbox: 'Alice@Contoso.com',
      folders: ['inbox', { id: 'AAMk1', changeKey: 'ck1' }],
      eventTypes: ['NewMail', 'Created'],
    });
    const b = checkpointKey({
      mailbox: ' alice@contoso.com',
      folders: [{ id: 'AAMk1', changeKey: 'ck2' }, 'inbox', 'inbox'],
      eventTypes: ['Created', 'NewMail', 'Created'],
    });
    expect(a).toBe(b);
    expect(a).toContain('mailbox=alice%40contoso.com');
  });

  it('tells apart what changes the subscription', () => {
    const base = { mailbox: 'a@x', folders: ['inbox'], eventTypes: ['NewMail'] } as const;
    const keys = [
      checkpointKey(base),
      checkpointKey({ ...base, mailbox: 'b@x' }),
      checkpointKey({ ...base, folders: ['sentitems'] }),
      checkpointKey({ ...base, folders: [{ id: 'inbox' }] }), // an id that happens to read "inbox"
      checkpointKey({ ...base, eventTypes: ['NewMail', 'Deleted'] }),
      checkpointKey({ ...base, subscribeToAllFolders: true }),
      checkpointKey({ ...base, consumer: 'crm' }),
      checkpointKey({ ...base, folders: ['in,box'] }), // delimiters inside values are escaped
      checkpointKey({ ...base, folders: ['in', 'box'] }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is the same for every permutation (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...EVENT_TYPES), { minLength: 1 }),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 }),
        fc.integer(),
        (events: EventType[], folders: string[], seed: number) => {
          const shuffle = <T>(xs: readonly T[]): T[] =>
            xs
              .map((x, i) => ({ x, k: Math.imul(i + 1, seed | 1) ^ seed }))
              .sort((p, q) => p.k - q.k)
              .map((p) => p.x);
          expect(checkpointKey({ folders: shuffle(folders), eventTypes: shuffle(events) })).toBe(
            checkpointKey({ folders, eventTypes: events }),
          );
        },
      ),
    );
  });
});

storeContract('MemoryCheckpointStore', () => new MemoryCheckpointStore());
storeContract('FileCheckpointStore', () => new FileCheckpointStore({ path: join(dir, 'cp.json') }));

describe('FileCheckpointStore', () => {
  it('persists across instances, in a file of its own format, created with its directory', async () => {
    const path = join(dir, 'nested/deeper/cp.json');
    const writer = new FileCheckpointStore({ path });
    await writer.set('k', { watermark: 'w1', syncStates: { inbox: 's' } });
    await writer.close(); // releases the lock file too
    expect((await new FileCheckpointStore({ path }).get('k'))?.watermark).toBe('w1');
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(raw).toMatchObject({ format: 'ews-push-bridge/checkpoints', version: 1, checkpoints: { k: { watermark: 'w1' } } });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'nested/deeper'))).toEqual(['cp.json']); // no temp file left behind
  });

  it('serializes writes (one rename at a time) and coalesces overlapping sets', async () => {
    const path = join(dir, 'cp.json');
    const store = new FileCheckpointStore({ path });
    await store.set('warm-up', { watermark: 'w' });
    renames.calls = 0;
    renames.maxInFlight = 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.set('k', { watermark: `w${i}` })));
    expect(renames.maxInFlight).toBe(1);
    expect(renames.calls).toBeGreaterThan(0);
    expect(renames.calls).toBeLessThan(40);
    expect((await new FileCheckpointStore({ path }).get('k'))?.watermark).toBe('w39');
  });

  const corruptions: Array<[string, string]> = [
    ['garbage', '{"format": "ews-push-bridge/checkpoints", "version": 1, "checkpoints": {"k": {"waterm'],
    ['an empty file', ''],
    ['another JSON file', '{"name": "some-package"}'],
    ['a future version', '{"format": "ews-push-bridge/checkpoints", "version": 2, "checkpoints": {}}'],
    ['a bad record', '{"format": "ews-push-bridge/checkpoints", "version": 1, "checkpoints": {"k": {"watermark": 5}}}'],
    ['a JSON array', '[]'],
  ];
  for (const [what, text] of corruptions) {
    it(`refuses ${what} with a clear, non-retriable EwsCheckpointError, and does not overwrite it`, async () => {
      const path = join(dir, 'cp.json');
      writeFileSync(path, text);
      const store = new FileCheckpointStore({ path });
      const error = await store.get('k').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EwsCheckpointError);
      expect(error).toMatchObject({ code: 'EWS_CHECKPOINT_ERROR', retriable: false });
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(/corrupt/);
      await expect(store.set('k', { watermark: 'new' })).rejects.toBeInstanceOf(EwsCheckpointError);
      expect(readFileSync(path, 'utf8')).toBe(text);
      // Once someone removes the bad file, the same instance works again without a restart.
      rmSync(path);
      await store.set('k', { watermark: 'new' });
      expect((await store.get('k'))?.watermark).toBe('new');
    });
  }

  it('reports a path it cannot read or write as an EwsCheckpointError naming the errno', async () => {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, 'x');
    const store = new FileCheckpointStore({ path: join(notADir, 'cp.json') });
    await expect(store.set('k', { watermark: 'w' })).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_ERROR' });
    const isDir = new FileCheckpointStore({ path: dir });
    await expect(isDir.get('k')).rejects.toThrow(/Cannot read checkpoint file .*EISDIR/);
  });

  it('removes temp files left by dead writers, not those of live ones', async () => {
    const path = join(dir, 'cp.json');
    const dead = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', '0']);
      child.on('error', reject);
      child.on('exit', () => resolve(child.pid ?? -1));
    });
    writeFileSync(join(dir, `.cp.json.${dead}.abc123.tmp`), '{"half');
    writeFileSync(join(dir, `.cp.json.${process.pid}.def456.tmp`), '{"mine');
    writeFileSync(join(dir, 'unrelated.tmp'), '');
    expect(await new FileCheckpointStore({ path }).get('k')).toBeUndefined();
    expect(readdirSync(dir).sort()).toEqual([`.cp.json.${process.pid}.def456.tmp`, 'unrelated.tmp']);
  });

  it('rejects invalid options naming the option', () => {
    expect(() => new FileCheckpointStore({ path: '' })).toThrow(/^path must be a non-empty string \(got ""\)$/);
    expect(() => new FileCheckpointStore({ path: 'x', mode: 0o1777 })).toThrow(/^mode must be an integer 0–0o777 \(got 0o1777\)$/);
    expect(() => new FileCheckpointStore({ path: 'x', mode: 1.5 })).toThrow(/^mode must be an integer 0–0o777 \(got 1.5\)$/);
  });

  it('survives SIGKILL at random instants of a tight write loop: always a whole state that was written', async () => {
    const path = join(dir, 'cp.json');
    const key = checkpointKey({ mailbox: 'kill@contoso.com', folders: ['inbox'], eventTypes: ['NewMail'] });
    let previous = 0;
    const kills = 20;
    for (let round = 0; round < kills; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', writerScript, path, key], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Wait until it is writing, then kill it after a random few milliseconds.
      await new Promise<void>((resolve, reject) => {
        const check = setInterval(() => {
          if (/ok \d+/.test(out)) {
            clearInterval(check);
            setTimeout(resolve, Math.random() * 25);
          } else if (child.exitCode !== null) {
            clearInterval(check);
            reject(new Error(`writer exited early: ${err}`));
          }
        }, 2);
      });
      child.kill('SIGKILL');
      await exited;
      expect(err).toBe('');
      // The child resumed where the file said the previous one stopped.
      expect(out.startsWith(`start ${previous}\n`)).toBe(true);
      const lastOk = Math.max(...[...out.matchAll(/ok (\d+)\n/g)].map((m) => Number(m[1])));

      const store = new FileCheckpointStore({ path });
      const main = await store.get(key);
      const shadow = await store.get(`${key}:shadow`);
      const n = counterOf(main?.watermark);
      const s = counterOf(shadow?.watermark);
      expect(n).toBeDefined();
      expect(s).toBeDefined();
      expect(main?.syncStates).toEqual({ inbox: main?.watermark, sent: main?.watermark });
      // Every acknowledged set is on disk; at most the one in flight got further.
      expect(s).toBeGreaterThanOrEqual(lastOk);
      expect(n).toBeGreaterThanOrEqual(s ?? Infinity);
      expect(n).toBeLessThanOrEqual(lastOk + 1);
      previous = n ?? 0;
    }
    expect(previous).toBeGreaterThan(kills);
    // The last reader cleaned up any temp file a killed writer left.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(path)).toBe(true);
  }, 120_000);
});
