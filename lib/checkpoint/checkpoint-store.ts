/**
 * Where a source keeps what it needs to resume after a restart: the last watermark it delivered
 * (and, later, SyncFolderItems sync states), keyed by what the subscription watches.
 *
 * @packageDocumentation
 */
import { EwsCheckpointError } from '../errors.js';
import type { EventType, FolderRef } from '../model.js';
import { describeValue, nonEmptyString } from '../validate.js';

/** What a store holds for one subscription key. */
export interface Checkpoint {
  /**
   * The watermark to resume from: the last one whose events the consumer finished with. A pull
   * subscription created with it receives the events after it.
   */
  readonly watermark?: string;
  /**
   * SyncFolderItems `SyncState` per folder (keyed by the caller's folder key), for sources that
   * recover missed events by syncing. Kept by every store; not yet written by any source.
   */
  readonly syncStates?: Readonly<Record<string, string>>;
  /** ISO-8601 time of the last successful {@link CheckpointStore.set} of this key. */
  readonly updatedAt: string;
}

/**
 * A change to one key's {@link Checkpoint}. An empty or blank `watermark` (or sync state) is
 * refused with an {@link EwsCheckpointError}: it is not a position, and a store holding one would
 * fail every restart. Fields present replace the stored ones; fields left
 * out keep their stored value, so a source that writes only `watermark` never erases
 * `syncStates` written by another.
 */
export interface CheckpointUpdate {
  /** The new watermark; left out, the stored one stays. */
  readonly watermark?: string;
  /** SyncStates to store, replacing the stored ones; left out, the stored ones stay. */
  readonly syncStates?: Readonly<Record<string, string>>;
}

/**
 * Durable (or not) storage of checkpoints, one per subscription key (see {@link checkpointKey}).
 *
 * Contract every implementation keeps:
 * - `set` resolves only once the change is as durable as the store can make it; a later `get`
 *   (also after a restart, for durable stores) returns it.
 * - Failures reject with an `EwsCheckpointError`; a store never pretends to be empty because its
 *   backing data is unreadable.
 * - Calls may overlap; each `set` is applied whole, in call order.
 */
export interface CheckpointStore {
  /** The checkpoint stored for `key`, or `undefined` when there is none. */
  get(key: string): Promise<Checkpoint | undefined>;
  /** Merges `update` into the checkpoint of `key` (creating it) and stamps `updatedAt`. */
  set(key: string, update: CheckpointUpdate): Promise<void>;
  /** Forgets `key`. Resolves also when there was nothing to forget. */
  delete(key: string): Promise<void>;
}

/** What identifies a subscription's position for {@link checkpointKey}. */
export interface CheckpointKeyOptions {
  /**
   * The mailbox watched: the impersonated SMTP address, or the account's own address when not
   * impersonating. Compared case-insensitively. Default: `''` (the account's own mailbox, which is
   * only unambiguous when one account uses the store).
   */
  readonly mailbox?: string;
  /** Folders watched, in any order. Ids are compared by `id` only (change keys change). Default: none. */
  readonly folders?: readonly FolderRef[];
  /** Whether the subscription watches every folder (then `folders` is ignored). Default: `false`. */
  readonly subscribeToAllFolders?: boolean;
  /** Event types, in any order; duplicates are ignored. Default: none. */
  readonly eventTypes?: readonly EventType[];
  /**
   * Tells apart several consumers that watch the same mailbox, folders and event types through one
   * store (each keeps its own position). Default: `''`.
   */
  readonly consumer?: string;
}

const part = (value: string): string => encodeURIComponent(value);

/**
 * A stable key for a subscription's checkpoint: the same mailbox, folder set and event-type set
 * give the same key in any order, so a restarted process finds its watermark. Readable on purpose
 * (`v1|mailbox=…|folders=…|events=…|consumer=…`), since it shows up in checkpoint files.
 *
 * Sources call it with their resolved options (defaults applied); call it the same way to find a
 * source's checkpoint in a store.
 */
export function checkpointKey(options: CheckpointKeyOptions): string {
  const mailbox = (options.mailbox ?? '').trim().toLowerCase();
  const folders = options.subscribeToAllFolders
    ? ['*all']
    : [...new Set((options.folders ?? []).map((f) => (typeof f === 'string' ? `name:${f}` : `id:${f.id}`)))].sort();
  const events = [...new Set(options.eventTypes ?? [])].sort();
  return [
    'v1',
    `mailbox=${part(mailbox)}`,
    `folders=${folders.map(part).join(',')}`,
    `events=${events.map(part).join(',')}`,
    `consumer=${part(options.consumer ?? '')}`,
  ].join('|');
}

/**
 * Throws a non-retriable {@link EwsCheckpointError} when `update` holds a value no store may
 * persist: a `watermark` or sync state that is not a string or is empty or blank. Every store
 * calls it in `set` (and {@link mergeCheckpoint} does too).
 */
export function checkCheckpointUpdate(key: string, update: CheckpointUpdate): void {
  const blank = (value: unknown): boolean => typeof value !== 'string' || value.trim() === '';
  if (update.watermark !== undefined && blank(update.watermark)) {
    throw new EwsCheckpointError(`Refusing to store an empty watermark for checkpoint key ${JSON.stringify(key)}`);
  }
  for (const [folder, state] of Object.entries(update.syncStates ?? {})) {
    if (blank(state)) throw new EwsCheckpointError(`Refusing to store an empty sync state for folder ${JSON.stringify(folder)} of checkpoint key ${JSON.stringify(key)}`);
  }
}

/**
 * Applies `update` to `previous` the way {@link CheckpointStore.set} specifies.
 *
 * @throws EwsCheckpointError for an update {@link checkCheckpointUpdate} refuses.
 */
export function mergeCheckpoint(previous: Checkpoint | undefined, update: CheckpointUpdate, now: Date, key = ''): Checkpoint {
  checkCheckpointUpdate(key, update);
  const watermark = update.watermark ?? previous?.watermark;
  const syncStates = update.syncStates ?? previous?.syncStates;
  return {
    ...(watermark === undefined ? {} : { watermark }),
    ...(syncStates === undefined ? {} : { syncStates: { ...syncStates } }),
    updatedAt: now.toISOString(),
  };
}

/** A source's `checkpoint` option, checked: a TypeError names it. @internal */
export function requireCheckpointStore(value: unknown): CheckpointStore {
  const store = value as Partial<CheckpointStore> | null;
  if (typeof store !== 'object' || store === null || typeof store.get !== 'function' || typeof store.set !== 'function') {
    throw new TypeError(`checkpoint must be a CheckpointStore (with get and set methods) (got ${describeValue(value)})`);
  }
  return store as CheckpointStore;
}

/** A source's `checkpointKey` option, checked: a TypeError names it. @internal */
export function requireCheckpointKey(value: unknown): string {
  return nonEmptyString(value, 'checkpointKey');
}
