/**
 * Exclusive ownership of a checkpoint file: a lock file `<path>.lock` beside it, created atomically
 * (written to a temp file, then hard-linked into place, so nobody ever reads a half-written lock),
 * holding who owns it: pid, host name, when, the process's start time (Linux), and a random nonce.
 *
 * A lock is stale — and taken over — when its holder is on this host and that process is gone: no
 * such pid, or the pid now belongs to a process started at another time (pid reuse), or it is our
 * own pid but no store of this process holds it (a container restarted with the same pid). A
 * holder on another host cannot be checked; its lock stands until someone removes the file.
 * A takeover renames the stale lock away first and checks that what it moved was the lock it judged
 * stale, so two processes taking over at once cannot both win.
 *
 * Why not `proper-lockfile`: it detects staleness by an mtime it refreshes on a timer (a dead
 * holder blocks restarts for its whole stale period, 10 s by default), and its lock does not say
 * who holds it — the error here must name the holder.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { EwsCheckpointError, EwsCheckpointLockedError, type CheckpointLockHolder } from '../errors.js';

const LOCK_FORMAT = 'ews-push-bridge/checkpoint-lock';
/** A lock file we cannot parse is taken as being written by a store without hard links for this long. */
const UNREADABLE_GRACE_MS = 10_000;
const MAX_TAKEOVER_ROUNDS = 5;

interface LockContent extends CheckpointLockHolder {
  readonly format: typeof LOCK_FORMAT;
  /** Process start time in clock ticks since boot (Linux `/proc/<pid>/stat` field 22), when known. */
  readonly processStart?: string;
  readonly nonce: string;
}

/** Lock files held by this process, with the exact text each holds (for the exit handler). */
const heldHere = new Map<string, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A process that exits without close() (the usual end of a CLI) still frees its files. A kill
  // leaves the lock behind; the next owner sees the dead pid and takes it over.
  process.once('exit', () => {
    for (const [lockPath, text] of heldHere) {
      try {
        if (readFileSync(lockPath, 'utf8') === text) unlinkSync(lockPath);
      } catch {
        // Gone already, or not ours to remove.
      }
    }
  });
}

const errnoCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/** The start time of `pid` in clock ticks since boot, on Linux; `undefined` elsewhere or when unreadable. */
function processStartOf(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[22 - 3];
  } catch {
    return undefined;
  }
}

let ownStart: string | undefined | null = null;
function ownProcessStart(): string | undefined {
  if (ownStart === null) ownStart = processStartOf('self');
  return ownStart;
}

function parseLock(text: string): LockContent | undefined {
  try {
    const data = JSON.parse(text) as Partial<LockContent> | null;
    if (
      data === null ||
      typeof data !== 'object' ||
      data.format !== LOCK_FORMAT ||
      typeof data.pid !== 'number' ||
      typeof data.hostname !== 'string' ||
      typeof data.since !== 'string' ||
      typeof data.nonce !== 'string'
    ) {
      return undefined;
    }
    return data as LockContent;
  } catch {
    return undefined;
  }
}

function holderOf(content: LockContent): CheckpointLockHolder {
  return { pid: content.pid, hostname: content.hostname, since: content.since };
}

/** Whether the process that wrote `content` is certainly gone. */
function isStale(content: LockContent, lockPath: string): boolean {
  if (content.hostname !== hostname()) return false;
  if (content.pid === process.pid) return !heldHere.has(lockPath);
  try {
    process.kill(content.pid, 0);
  } catch (error) {
    if (errnoCode(error) === 'ESRCH') return true;
  }
  const start = content.processStart === undefined ? undefined : processStartOf(content.pid);
  return start !== undefined && start !== content.processStart;
}

/** An exclusive lock on one checkpoint file, held by one store of one process. */
export class CheckpointFileLock {
  private released = false;
  private constructor(
    readonly path: string,
    readonly lockPath: string,
    private readonly text: string,
  ) {}

  /**
   * Takes the lock of checkpoint file `path` (creating its directory), taking over a stale one.
   *
   * @throws EwsCheckpointLockedError naming the holder when another live store owns the file;
   *   EwsCheckpointError when the lock file cannot be written.
   */
  static async acquire(path: string, mode: number): Promise<CheckpointFileLock> {
    const lockPath = `${path}.lock`;
    const dir = dirname(path);
    const content: LockContent = {
      format: LOCK_FORMAT,
      pid: process.pid,
      hostname: hostname(),
      since: new Date().toISOString(),
      ...(ownProcessStart() === undefined ? {} : { processStart: ownProcessStart() }),
      nonce: randomBytes(12).toString('hex'),
    };
    const text = `${JSON.stringify(content)}\n`;
    try {
      await mkdir(dir, { recursive: true });
      for (let round = 0; round < MAX_TAKEOVER_ROUNDS; round++) {
        if (await create(lockPath, text, mode)) {
          heldHere.set(lockPath, text);
          installExitHook();
          return new CheckpointFileLock(path, lockPath, text);
        }
        const existing = await readLock(lockPath);
        if (existing === undefined) continue; // released meanwhile: try again
        const holder = parseLock(existing.text);
        const stale = holder === undefined ? existing.ageMs > UNREADABLE_GRACE_MS : isStale(holder, lockPath);
        if (!stale) throw lockedError(path, lockPath, holder);
        await takeOver(lockPath, existing.text);
      }
    } catch (error) {
      if (error instanceof EwsCheckpointError) throw error;
      const code = errnoCode(error);
      throw new EwsCheckpointError(`Cannot lock checkpoint file ${path} (${code ?? 'unknown error'})`, { cause: error, retriable: true });
    }
    throw new EwsCheckpointError(`Cannot lock checkpoint file ${path}: its lock file ${lockPath} keeps changing`, { retriable: true });
  }

  /**
   * Checks that the lock file is still ours (nobody removed it or took it over), before a write.
   *
   * @throws EwsCheckpointLockedError naming the new holder when it is not.
   */
  async verify(): Promise<void> {
    const current = await readLock(this.lockPath).catch(() => undefined);
    if (current?.text === this.text) return;
    const holder = current === undefined ? undefined : parseLock(current.text);
    throw new EwsCheckpointLockedError(
      this.path,
      this.lockPath,
      holder === undefined ? undefined : holderOf(holder),
      `This store lost the lock of checkpoint file ${this.path}: ${holder === undefined ? `${this.lockPath} was removed` : `now held by ${describeHolder(holder)}`}; stopping rather than overwriting another owner's checkpoints`,
    );
  }

  /** Removes the lock file if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.lockPath);
    const current = await readLock(this.lockPath).catch(() => undefined);
    if (current?.text === this.text) await unlink(this.lockPath).catch(() => undefined);
  }
}

function describeHolder(holder: CheckpointLockHolder): string {
  const self = holder.pid === process.pid && holder.hostname === hostname();
  return `${self ? 'another store of this process' : 'process'} ${holder.pid} on ${holder.hostname} since ${holder.since}`;
}

function lockedError(path: string, lockPath: string, content: LockContent | undefined): EwsCheckpointLockedError {
  const holder = content === undefined ? undefined : holderOf(content);
  const who = holder === undefined ? 'a process whose lock file cannot be read' : describeHolder(holder);
  const advice =
    holder !== undefined && holder.pid === process.pid && holder.hostname === hostname()
      ? 'share one FileCheckpointStore, or close() the other first'
      : `one file has one owner; give each process its own file, or stop the other one (if it is gone, delete ${lockPath})`;
  return new EwsCheckpointLockedError(path, lockPath, holder, `Checkpoint file ${path} is locked by ${who}: ${advice}`);
}

/** Creates the lock file atomically with `text`; `false` when it exists. */
async function create(lockPath: string, text: string, mode: number): Promise<boolean> {
  const tmp = join(dirname(lockPath), `.${basename(lockPath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, lockPath);
    return true;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EEXIST') return false;
    // A file system without hard links: fall back to an exclusive create (a reader may then see
    // it empty for a moment, which counts as "held" for UNREADABLE_GRACE_MS).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createExclusive(lockPath, text, mode);
    throw error;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function createExclusive(lockPath: string, text: string, mode: number): Promise<boolean> {
  let handle;
  try {
    handle = await open(lockPath, 'wx', mode);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

async function readLock(lockPath: string): Promise<{ text: string; ageMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    return { text, ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Moves a stale lock out of the way. Renaming is atomic, so of several processes taking over at
 * once one moves the stale lock; another may move the *new* lock of the winner instead — it sees
 * that the text is not what it judged stale and puts it back.
 */
async function takeOver(lockPath: string, staleText: string): Promise<void> {
  const aside = `${lockPath}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return; // someone else moved it: look again
    throw error;
  }
  try {
    const moved = await readFile(aside, 'utf8');
    if (moved !== staleText) {
      // Not the lock we judged: give it back to its owner (unless yet another lock appeared).
      await link(aside, lockPath).catch(() => undefined);
    }
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}
