/**
 * Issue 13, "exclusive checkpoint ownership": two processes on one FileCheckpointStore file used to
 * overwrite each other's keys silently (288 of 300 lost). Now the first writer takes a lock and a
 * second owner gets EwsCheckpointLockedError (`EWS_CHECKPOINT_LOCKED`) naming the file and the
 * holder; close() and a normal exit release it; a SIGKILLed holder's lock is taken over.
 * Real child processes (test/children/checkpoint-owner.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileCheckpointStore } from '../../lib/checkpoint/file-store.js';
import { EwsCheckpointLockedError } from '../../lib/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ownerScript = join(root, 'test/children/checkpoint-owner.ts');

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ews-lock-'));
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Owner {
  readonly child: ChildProcess;
  out(): string;
  /** Resolves when stdout matches `pattern` (or rejects when the child exits first). */
  waitFor(pattern: RegExp): Promise<void>;
  readonly exited: Promise<number | null>;
}

function owner(file: string, prefix: string, count: number, mode: 'exit' | 'hold' | 'close-hold'): Owner {
  const child = spawn(process.execPath, ['--import', 'tsx', ownerScript, file, prefix, String(count), mode], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    exited,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(out)) {
            listeners.delete(check);
            resolve();
          }
        };
        listeners.add(check);
        check();
        void exited.then((code) => {
          if (!pattern.test(out)) reject(new Error(`child exited (${code}) before ${pattern}: ${out}\n${err}`));
        });
      }),
  };
}

function lockError(out: string): { code?: string; message: string; holder?: { pid: number; hostname: string; since: string } } {
  const line = /^error (.*)$/m.exec(out);
  if (!line?.[1]) throw new Error(`no error line in: ${out}`);
  return JSON.parse(line[1]) as never;
}

function keysIn(file: string): string[] {
  return Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { checkpoints: Record<string, unknown> }).checkpoints);
}

describe('FileCheckpointStore: one owner per file', () => {
  it('two processes on one file: the second gets EWS_CHECKPOINT_LOCKED naming the file and the holder; none of the first one\'s keys is lost', async () => {
    const file = join(dir, 'cp.json');
    const a = owner(file, 'a', 150, 'hold');
    await a.waitFor(/ok 1\n/);
    const b = owner(file, 'b', 150, 'hold');
    expect(await b.exited).toBe(2);
    const error = lockError(b.out());
    expect(error.code).toBe('EWS_CHECKPOINT_LOCKED');
    expect(error.message).toContain(file);
    expect(error.message).toContain(String(a.child.pid));
    expect(error.holder).toMatchObject({ pid: a.child.pid, hostname: hostname() });
    await a.waitFor(/done\n/);
    const keys = keysIn(file);
    expect(keys.filter((k) => k.startsWith('a-'))).toHaveLength(150);
    expect(keys.filter((k) => k.startsWith('b-'))).toEqual([]);
  }, 60_000);

  it('close() releases the lock: another process may then own the file, and finds the first one\'s keys', async () => {
    const file = join(dir, 'cp.json');
    const a = owner(file, 'a', 5, 'close-hold');
    await a.waitFor(/closed\n/);
    expect(existsSync(`${file}.lock`)).toBe(false);
    const b = owner(file, 'b', 5, 'hold');
    await b.waitFor(/done\n/);
    expect(keysIn(file).sort()).toEqual(['a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'b-1', 'b-2', 'b-3', 'b-4', 'b-5']);
    expect(JSON.parse(readFileSync(`${file}.lock`, 'utf8'))).toMatchObject({ pid: b.child.pid });
  }, 60_000);

  it('a normal exit without close() releases the lock', async () => {
    const file = join(dir, 'cp.json');
    const a = owner(file, 'a', 3, 'exit');
    expect(await a.exited).toBe(0);
    expect(existsSync(`${file}.lock`)).toBe(false);
    expect(keysIn(file)).toHaveLength(3);
  }, 60_000);

  it('survives SIGKILL of the holder: its stale lock is taken over by the next process', async () => {
    const file = join(dir, 'cp.json');
    const a = owner(file, 'a', 3, 'hold');
    await a.waitFor(/done\n/);
    expect(JSON.parse(readFileSync(`${file}.lock`, 'utf8'))).toMatchObject({ pid: a.child.pid });
    a.child.kill('SIGKILL');
    await a.exited;
    // The lock file is still there (nothing ran at the kill) …
    expect(existsSync(`${file}.lock`)).toBe(true);
    // … and the next owner sees its holder is gone.
    const b = owner(file, 'b', 3, 'hold');
    await b.waitFor(/done\n/);
    expect(JSON.parse(readFileSync(`${file}.lock`, 'utf8'))).toMatchObject({ pid: b.child.pid });
    expect(keysIn(file).sort()).toEqual(['a-1', 'a-2', 'a-3', 'b-1', 'b-2', 'b-3']);
  }, 60_000);
});

describe('FileCheckpointStore lock: in one process, and odd lock files', () => {
  it('a second instance in the same process is refused too, until the first closes', async () => {
    const path = join(dir, 'cp.json');
    const first = new FileCheckpointStore({ path });
    const second = new FileCheckpointStore({ path });
    await first.set('k', { watermark: 'w1' });
    const error = await second.set('k', { watermark: 'w2' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EwsCheckpointLockedError);
    expect(error).toMatchObject({ code: 'EWS_CHECKPOINT_LOCKED', retriable: false, path, lockPath: `${path}.lock`, holder: { pid: process.pid } });
    expect((error as Error).message).toMatch(/another store of this process/);
    // Reading needs no lock.
    expect((await second.get('k'))?.watermark).toBe('w1');
    await first.close();
    await second.set('k', { watermark: 'w2' });
    expect((await second.get('k'))?.watermark).toBe('w2');
    await second.close();
    await expect(first.set('k', { watermark: 'w3' })).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_ERROR' });
  });

  it('a lock taken over behind its back: the next write is refused, nothing overwritten', async () => {
    const path = join(dir, 'cp.json');
    const store = new FileCheckpointStore({ path });
    await store.set('k', { watermark: 'w1' });
    const intruder = { format: 'ews-push-bridge/checkpoint-lock', pid: 1, hostname: 'elsewhere', since: '2026-01-01T00:00:00.000Z', nonce: 'x' };
    writeFileSync(`${path}.lock`, JSON.stringify(intruder));
    await expect(store.set('k', { watermark: 'w2' })).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_LOCKED', holder: { pid: 1, hostname: 'elsewhere' } });
    expect(keysIn(path)).toEqual(['k']);
    expect((JSON.parse(readFileSync(path, 'utf8')) as { checkpoints: { k: { watermark: string } } }).checkpoints.k.watermark).toBe('w1');
    await store.close();
    // close() does not remove a lock that is not its own.
    expect(existsSync(`${path}.lock`)).toBe(true);
  });

  it('a lock of another host stands (it cannot be checked); one left by a previous life of our own pid is taken over', async () => {
    const path = join(dir, 'cp.json');
    const lock = (host: string, pid: number): string => JSON.stringify({ format: 'ews-push-bridge/checkpoint-lock', pid, hostname: host, since: '2026-01-01T00:00:00.000Z', nonce: 'n' });
    writeFileSync(`${path}.lock`, lock('other-host', 4242));
    const store = new FileCheckpointStore({ path });
    const error = await store.set('k', { watermark: 'w' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'EWS_CHECKPOINT_LOCKED', holder: { pid: 4242, hostname: 'other-host' } });
    expect((error as Error).message).toContain(`delete ${path}.lock`);
    // A container restarted with the same pid and host name: the lock names us, but no store of ours holds it.
    writeFileSync(`${path}.lock`, lock(hostname(), process.pid));
    await store.set('k', { watermark: 'w' });
    expect(JSON.parse(readFileSync(`${path}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).nonce).not.toBe('n');
    await store.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});
