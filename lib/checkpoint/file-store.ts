/**
 * A checkpoint store in one JSON file, crash-safe by write-to-temp, fsync, rename, fsync-directory.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EwsCheckpointError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { describeValue, nonEmptyString, requireObject } from '../validate.js';
import { checkCheckpointUpdate, mergeCheckpoint, type Checkpoint, type CheckpointStore, type CheckpointUpdate } from './checkpoint-store.js';
import { CheckpointFileLock } from './file-lock.js';

/** Options of {@link FileCheckpointStore}. */
export interface FileCheckpointStoreOptions {
  /** Path of the JSON file. Created (with its directory) on the first write; a missing file is an empty store. */
  readonly path: string;
  /** Permission bits of the file (and of its lock file) when it is (re)written. Default: `0o600` (it names mailboxes). */
  readonly mode?: number;
  /** Where to report cleanup of leftover temp files. Default: silent. */
  readonly logger?: Logger;
}

/** The `format` tag of the file, so a wrong file is recognised instead of misread. */
const FORMAT = 'ews-push-bridge/checkpoints';
const VERSION = 1;

interface FileShape {
  readonly format: typeof FORMAT;
  readonly version: typeof VERSION;
  readonly checkpoints: Record<string, Checkpoint>;
}

type Records = ReadonlyMap<string, Checkpoint>;

interface PendingOp {
  readonly apply: (records: Map<string, Checkpoint>, now: Date) => void;
  readonly resolve: () => void;
  readonly reject: (error: EwsCheckpointError) => void;
}

/** Error codes after which trying again cannot help without someone fixing the file system. */
const PERMANENT_FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP']);

const errnoCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/**
 * Keeps every checkpoint in one JSON file. Each write goes to a fresh temp file in the same
 * directory, is fsynced, renamed over the target, and the directory is fsynced, so a crash or
 * `kill -9` at any instant leaves either the previous or the new file — never a torn one.
 *
 * - Writes are serialized: at most one temp file is being renamed at a time; `set` calls that
 *   arrive during a write are coalesced into the next one and each resolves once its change is on
 *   disk (or rejects with an {@link EwsCheckpointError}, leaving the stored state unchanged).
 * - A file that is unreadable, not JSON, or not a checkpoint file makes `get`/`set` reject with a
 *   non-retriable {@link EwsCheckpointError} naming the path: the store never silently restarts from
 *   nothing. Fix or delete the file; the next call reads it again.
 * - One owner per file: the first write takes a lock (`<path>.lock`, holding pid, host and start
 *   time), and a second store that writes — in another process, or another instance in this one —
 *   fails with a non-retriable `EwsCheckpointLockedError` (`EWS_CHECKPOINT_LOCKED`) naming
 *   the file and the holder, instead of silently overwriting its keys. Before each write the store
 *   checks that the lock is still its own. Reading needs no lock. {@link FileCheckpointStore.close}
 *   releases the lock (so does a normal process exit); a lock left by a killed process is taken
 *   over once that process is gone (same host: its pid is dead or reused). A holder on another
 *   host (a shared file system) cannot be checked: delete its lock file once it is gone.
 * - An empty or blank watermark or sync state is refused (an `EwsCheckpointError`).
 */
export class FileCheckpointStore implements CheckpointStore {
  /** Absolute path of the checkpoint file. */
  readonly path: string;
  readonly #mode: number;
  readonly #logger: Logger;
  /** What the file holds, once read; only replaced after a successful write. */
  #durable: Records | undefined;
  #loading: Promise<Records> | undefined;
  readonly #queue: PendingOp[] = [];
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #lock: CheckpointFileLock | undefined;
  #closed = false;

  constructor(options: FileCheckpointStoreOptions) {
    requireObject(options, 'options');
    const path = nonEmptyString(options.path, 'path');
    const mode = options.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError(`mode must be an integer 0–0o777 (got ${describeMode(mode)})`);
    this.path = resolve(path);
    this.#mode = mode;
    this.#logger = options.logger ?? silentLogger;
  }

  /** {@inheritDoc CheckpointStore.get} */
  async get(key: string): Promise<Checkpoint | undefined> {
    if (this.#closed) throw this.#closedError();
    const record = (await this.#load()).get(key);
    return record === undefined ? undefined : structuredClone(record);
  }

  /** {@inheritDoc CheckpointStore.set} */
  set(key: string, update: CheckpointUpdate): Promise<void> {
    try {
      checkCheckpointUpdate(key, update);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#enqueue((records, now) => {
      records.set(key, mergeCheckpoint(records.get(key), update, now, key));
    });
  }

  /** {@inheritDoc CheckpointStore.delete} */
  delete(key: string): Promise<void> {
    return this.#enqueue((records) => {
      records.delete(key);
    });
  }

  /**
   * Finishes the writes already asked for, then releases the file's lock so another store (or
   * process) may own it. Later calls of `get`/`set`/`delete` reject. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#drainDone;
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release();
  }

  #closedError(): EwsCheckpointError {
    return new EwsCheckpointError(`The checkpoint store of ${this.path} is closed`);
  }

  #enqueue(apply: PendingOp['apply']): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ apply, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        this.#drainDone = this.#drain();
      }
    });
  }

  /**
   * The lock, taken on the first write. What was read before it was taken may be stale (the
   * previous owner may have written since), so the file is read again under the lock.
   */
  async #ownLock(): Promise<CheckpointFileLock> {
    if (this.#lock !== undefined) {
      await this.#lock.verify();
      return this.#lock;
    }
    this.#lock = await CheckpointFileLock.acquire(this.path, this.#mode);
    this.#durable = undefined;
    return this.#lock;
  }

  /** Writes queued changes batch by batch until the queue is empty. Never rejects. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0);
        try {
          await this.#ownLock();
          const next = new Map(await this.#load());
          const now = new Date();
          for (const op of batch) op.apply(next, now);
          await this.#write(next);
          this.#durable = next;
          for (const op of batch) op.resolve();
        } catch (error) {
          const failure =
            error instanceof EwsCheckpointError
              ? error
              : new EwsCheckpointError(`Cannot write checkpoint file ${this.path}`, { cause: error, retriable: true });
          for (const op of batch) op.reject(failure);
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #load(): Promise<Records> {
    if (this.#durable !== undefined) return this.#durable;
    this.#loading ??= this.#read();
    try {
      const records = await this.#loading;
      this.#durable ??= records;
      return this.#durable;
    } finally {
      // On failure the next call reads again, so fixing the file does not need a restart.
      this.#loading = undefined;
    }
  }

  async #read(): Promise<Records> {
    await this.#removeStaleTempFiles();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return new Map();
      throw new EwsCheckpointError(`Cannot read checkpoint file ${this.path} (${code ?? 'unknown error'})`, {
        cause: error,
        retriable: code === undefined || !PERMANENT_FS_CODES.has(code),
      });
    }
    return this.#parse(text);
  }

  #parse(text: string): Records {
    const corrupt = (why: string, cause?: unknown): EwsCheckpointError =>
      new EwsCheckpointError(
        `Checkpoint file ${this.path} is corrupt (${why}); refusing to start from nothing — fix or delete the file to start over`,
        { cause },
      );
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw corrupt(text.length === 0 ? 'empty file' : 'not JSON', error);
    }
    if (!isObject(data) || data.format !== FORMAT) throw corrupt(`not a ${FORMAT} file`);
    if (data.version !== VERSION) throw corrupt(`unsupported version ${JSON.stringify(data.version)}`);
    if (!isObject(data.checkpoints)) throw corrupt('no checkpoints object');
    const records = new Map<string, Checkpoint>();
    for (const [key, value] of Object.entries(data.checkpoints)) {
      if (!isCheckpoint(value)) throw corrupt(`invalid checkpoint for key ${JSON.stringify(key)}`);
      records.set(key, value);
    }
    return records;
  }

  async #write(records: Records): Promise<void> {
    const dir = dirname(this.path);
    const shape: FileShape = { format: FORMAT, version: VERSION, checkpoints: Object.fromEntries(records) };
    const text = `${JSON.stringify(shape, null, 2)}\n`;
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(tmp, 'wx', this.#mode);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.path);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      const code = errnoCode(error);
      throw new EwsCheckpointError(`Cannot write checkpoint file ${this.path} (${code ?? 'unknown error'})`, {
        cause: error,
        retriable: code === undefined || !PERMANENT_FS_CODES.has(code),
      });
    }
    await syncDirectory(dir);
  }

  /** Temp files of processes that died mid-write (kill -9) would pile up; remove those. */
  async #removeStaleTempFiles(): Promise<void> {
    const dir = dirname(this.path);
    const prefix = `.${basename(this.path)}.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return; // No directory yet, or unreadable: reading the file reports the real problem.
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
      // Our own temp files, and those of the lock file (`file-lock.ts`).
      const match = /^(?:lock\.)?(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
      const pid = match?.[1] === undefined ? undefined : Number(match[1]);
      if (pid === undefined || pid === process.pid || isProcessAlive(pid)) continue;
      try {
        await unlink(join(dir, name));
        this.#logger.debug('removed a temp file left by a crashed writer', { file: name });
      } catch {
        // Another process cleaned it first, or we may not delete it: harmless either way.
      }
    }
  }
}

/** Makes the rename itself durable. Some platforms/file systems cannot fsync a directory. */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EINVAL' || code === 'EISDIR' || code === 'EPERM' || code === 'ENOTSUP') return;
    throw new EwsCheckpointError(`Cannot fsync the directory of the checkpoint file (${code ?? 'unknown error'})`, {
      cause: error,
      retriable: true,
    });
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCheckpoint(value: unknown): value is Checkpoint {
  if (!isObject(value) || typeof value.updatedAt !== 'string') return false;
  if (value.watermark !== undefined && typeof value.watermark !== 'string') return false;
  if (value.syncStates !== undefined) {
    if (!isObject(value.syncStates)) return false;
    if (!Object.values(value.syncStates).every((s) => typeof s === 'string')) return false;
  }
  return true;
}

/** A file mode for an error message: in octal, as modes are written (`0o1777`, not `1023`). */
function describeMode(mode: unknown): string {
  return typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 ? `0o${mode.toString(8)}` : describeValue(mode);
}
