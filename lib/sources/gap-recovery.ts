/**
 * Loss-free streaming: recovers what a streaming subscription missed with `SyncFolderItems`.
 *
 * A {@link GapRecovery} sits on one mailbox's signal stream (engine-agnostic: the single streaming
 * source and a StreamingGroup member feed it the same `SourceSignal`s) and keeps, per watched
 * folder, a SyncFolderItems `SyncState` in the CheckpointStore:
 *
 * - **Start.** After the first `subscribed` signal (the subscription is live, so nothing new is
 *   missed): with stored states, a *catch-up* syncs from them and emits what changed while the
 *   source was down, then reports it as a `gap` (`reason: 'subscription-lost'`, from the
 *   checkpoint's `updatedAt`); without, a *baseline* (a full IdOnly sync, nothing emitted).
 * - **Every lossy gap** (`gap` with `eventsMayBeLost`) is held back while the folders are synced
 *   from their states; the changes the stream did not deliver are emitted as ordinary
 *   notifications whose events carry `recovered: true`, then the gap is reported with
 *   `recovered: n` (and `eventsMayBeLost: false`), or with `unrecoverable: why`.
 * - **De-duplication**: every item event the stream delivers is remembered (ItemId → ChangeKey,
 *   or deleted) since the states' baseline; a change whose exact version was delivered is not
 *   emitted again.
 * - **Re-baselining** bounds that memory: while the stream is healthy, once
 *   `rebaselineEvents` item events were delivered, or `rebaselineIntervalMs` passed with at least
 *   one, the folders are synced forward (nothing emitted). Changes that sync reports but the
 *   stream has not delivered yet are kept as *pending*: a gap before they arrive emits them;
 *   those still pending one whole healthy interval later are dropped (the stream had every chance).
 *
 * Request cost: a baseline costs ⌈items/512⌉ calls per folder; a recovery or re-baseline costs
 * one call per folder plus one per further 512 changes since the last state. Retries follow the
 * sources' discipline (`withRetry`: back-off, `BackOffMilliseconds`/`Retry-After` honoured).
 *
 * @packageDocumentation
 */
import type { Agent } from 'node:http';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { EwsBridgeError, EwsCheckpointError, EwsParseError, EwsResponseError } from '../errors.js';
import type { SyncFolderItemsMessage, SyncItemChange } from '../ews/messages.js';
import { SOAP_ACTIONS, buildSyncFolderItemsRequest, type FolderSpec } from '../ews/requests.js';
import type { EwsEndpointOptions } from '../ews/transport.js';
import type { EventType, Id, NotificationEvent, ObjectChangedEvent, PushNotification } from '../model.js';
import { emitWithAck, type AckHandle } from './ack.js';
import { planForCall, withRetry, type FailurePlan } from './backoff.js';
import { firstMessage, sourceEndpoint } from './endpoint.js';
import type { GapEvent, GapUnrecoverableReason, SourceSignal } from './lifecycle.js';
import type { ResolvedSourceOptions } from './options.js';
import { MAX_TIMER_MS, intInRange, requireObject } from '../validate.js';

/** Tuning of gap recovery of streaming sources and group members that have a `checkpoint` store (docs/retry-and-gaps.md). Every field is optional. */
export interface GapRecoveryOptions {
  /**
   * Re-baseline once the stream delivered this many item events since the last sync: the bound on
   * the delivered-set (one small map entry per item). Default `5_000`.
   */
  readonly rebaselineEvents?: number;
  /**
   * Re-baseline when this long passed since the last sync and at least one item event was
   * delivered meanwhile (a quiet mailbox costs nothing). Default `60_000`.
   */
  readonly rebaselineIntervalMs?: number;
  /** `MaxChangesReturned` of each SyncFolderItems call, 1–512. Default `512`. */
  readonly maxChangesReturned?: number;
}

/** What a {@link GapRecovery} needs: the source's resolved options plus the store. @internal */
export interface GapRecoveryConfig {
  readonly source: ResolvedSourceOptions;
  readonly store: CheckpointStore;
  readonly key: string;
  readonly rebaselineEvents: number;
  readonly rebaselineIntervalMs: number;
  readonly maxChangesReturned: number;
}

/** Checks {@link GapRecoveryOptions} and applies defaults. @internal */
export function resolveGapRecoveryOptions(options: GapRecoveryOptions | undefined): Omit<GapRecoveryConfig, 'source' | 'store' | 'key'> {
  if (options !== undefined) requireObject(options, 'recovery');
  const o = options ?? {};
  const int = (value: unknown, name: string, fallback: number, min: number, max: number): number => intInRange(value, `recovery.${name}`, fallback, min, max);
  return {
    rebaselineEvents: int(o.rebaselineEvents, 'rebaselineEvents', 5_000, 1, 10_000_000),
    rebaselineIntervalMs: int(o.rebaselineIntervalMs, 'rebaselineIntervalMs', 60_000, 1, MAX_TIMER_MS),
    maxChangesReturned: int(o.maxChangesReturned, 'maxChangesReturned', 512, 1, 512),
  };
}

/** The key of a folder's SyncState inside `Checkpoint.syncStates`. @internal */
export function folderKey(folder: FolderSpec): string {
  if (typeof folder === 'string') return `name:${folder}`;
  if ('id' in folder) return `id:${folder.id}`;
  return `name:${folder.distinguishedId}@${folder.mailbox.toLowerCase()}`;
}

/** Suffix of the `syncStates` entry that remembers a folder's id (learnt from `ParentFolderId`). */
const FOLDER_ID_SUFFIX = '#folderId';

/** Item classes whose creation counts as new mail (`NewMail` is only for messages). */
const MESSAGE_CLASSES: ReadonlySet<string> = new Set(['Message', 'MeetingMessage', 'MeetingRequest', 'MeetingResponse', 'MeetingCancellation']);

interface FolderState {
  readonly key: string;
  readonly spec: FolderSpec;
  syncState: string | undefined;
  folderId: string | undefined;
  /** Set when syncing this folder cannot work any more (it was deleted, access is denied). */
  unavailable: GapUnrecoverableReason | undefined;
}

interface Delivered {
  /** The last version the stream delivered (absent when the event carried no ChangeKey). */
  changeKey: string | undefined;
  deleted: boolean;
  /** Delivery counter when last touched: entries older than a completed sync are covered by it. */
  seq: number;
  /** The folder the live event put the item in (`ParentFolderId`). */
  folder: string | undefined;
}

interface Pending {
  readonly change: SyncItemChange;
  readonly folder: FolderState;
  /** The re-baseline that found it. */
  readonly generation: number;
}

/** Why a folder's sync stopped, as the gap will say. */
class FolderUnavailable extends Error {
  constructor(
    readonly reason: GapUnrecoverableReason,
    readonly error: unknown,
  ) {
    super(reason);
  }
}

/** Statistics of a {@link GapRecovery}, for tests, benches and metrics. */
export interface GapRecoveryStats {
  /** SyncFolderItems calls sent (retries included). */
  requests: number;
  /** Recovery runs (gaps and catch-up). */
  recoveries: number;
  /** Re-baselines and baselines. */
  rebaselines: number;
  /** Events emitted with `recovered: true`. */
  recoveredEvents: number;
  /** Live item events dropped because a recovery had emitted the same version already. */
  suppressedLive: number;
  /** Entries of the delivered-set now. */
  deliveredSetSize: number;
  /** The largest the delivered-set has been. */
  deliveredSetPeak: number;
  /** Pending changes (reported by a re-baseline, not yet streamed) now. */
  pending: number;
}

/**
 * The recovery unit of one mailbox's streaming subscription. Feed it every signal the engine
 * produces ({@link GapRecovery.onSignal}); it passes them on through `emit`, adding recovered
 * notifications and holding back lossy gaps until they are recovered.
 *
 * @internal
 */
export class GapRecovery {
  private readonly stopController = new AbortController();
  private readonly agent: Agent;
  private readonly endpoint: EwsEndpointOptions;
  private readonly folders: FolderState[];
  private readonly eventTypes: ReadonlySet<EventType>;
  private readonly delivered = new Map<string, Delivered>();
  /**
   * Versions emitted as recovered by the current and the previous sync run: the stream delivering
   * them later (they were in flight while the recovery ran) is dropped.
   */
  private recoveredVersions = new Map<string, string>();
  private recoveredBefore = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();
  /** Folder ids live events named that could not be told apart yet (see {@link learnFolderId}). */
  private readonly unattributed = new Set<string>();
  /** The versions the last sync run reported (`null`: deleted). */
  private lastResults = new Map<string, string | null>();
  private deliveryCounter = 0;
  private generation = 0;
  private subscriptionId = '';
  private started = false;
  /** Loaded from the store: undefined before, then the checkpoint's `updatedAt` when states were stored. */
  private catchUpFrom: Date | undefined;
  private needsStart = false;
  private heldGaps: GapEvent[] = [];
  private connected = false;
  private lastSyncAt = performance.now();
  private running: Promise<void> | undefined;
  private wantRebaseline = false;
  readonly stats: GapRecoveryStats = {
    requests: 0,
    recoveries: 0,
    rebaselines: 0,
    recoveredEvents: 0,
    suppressedLive: 0,
    deliveredSetSize: 0,
    deliveredSetPeak: 0,
    pending: 0,
  };

  /** Notifications emitted whose consumer has not finished with them yet (see `deferAck`). */
  private readonly unacked = new Set<AckHandle>();
  /** Sync-state writes, in order; each waits until the notifications emitted before it are done. */
  private persisting: Promise<void> = Promise.resolve();
  /** Resolves when {@link stop} is called. */
  private readonly stopped: Promise<'stopped'>;

  constructor(
    private readonly config: GapRecoveryConfig,
    private readonly emitSignal: (signal: SourceSignal) => void,
  ) {
    // SyncFolderItems needs no subscription affinity; X-AnchorMailbox still routes it.
    ({ agent: this.agent, endpoint: this.endpoint } = sourceEndpoint({ ...config.source, affinity: false }));
    this.folders = config.source.folders.map((spec) => ({ key: folderKey(spec), spec, syncState: undefined, folderId: typeof spec === 'object' && 'id' in spec ? spec.id : undefined, unavailable: undefined }));
    this.eventTypes = new Set(config.source.eventTypes);
    this.stopped = new Promise((resolve) => this.stopController.signal.addEventListener('abort', () => resolve('stopped'), { once: true }));
  }

  private get signal(): AbortSignal {
    return this.stopController.signal;
  }

  private get logger(): ResolvedSourceOptions['logger'] {
    return this.config.source.logger;
  }

  /** Stops every sync in flight (the run ends quietly) and closes the pool. Idempotent. */
  stop(): void {
    if (this.signal.aborted) return;
    this.stopController.abort(new Error('gap recovery stopped'));
    const running = this.running ?? Promise.resolve();
    void running.finally(() => this.agent.destroy());
  }

  /** Settles once the unit's work is over after {@link stop}. */
  async closed(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.persisting;
  }

  /**
   * Passes a signal on. A notification gets an acknowledgement handle, as pull's do: a consumer
   * that calls `deferAck` while receiving it holds back every sync-state write made after it until
   * it acknowledges — so a state is stored only once what it covers was handled, and a restart
   * after a crash redelivers rather than loses. (The ack itself resolves at once: streaming has no
   * per-notification checkpoint.)
   */
  private emit(signal: SourceSignal): void {
    if (signal.type !== 'notification') {
      this.emitSignal(signal);
      return;
    }
    const handle = emitWithAck(signal.notification, 'auto', this.logger, () => this.emitSignal(signal));
    if (handle.acked) {
      handle.written();
      return;
    }
    this.unacked.add(handle);
    void handle.done.then(() => {
      this.unacked.delete(handle);
      handle.written();
    });
  }

  /** One signal of the engine, in order. */
  onSignal(signal: SourceSignal): void {
    if (this.signal.aborted) return;
    switch (signal.type) {
      case 'notification': {
        const notification = this.recordLive(signal.notification);
        if (notification) this.emit(notification === signal.notification ? signal : { type: 'notification', notification });
        this.maybeRebaseline();
        return;
      }
      case 'subscribed':
        this.subscriptionId = signal.subscriptionId;
        this.emit(signal);
        if (!this.started) {
          this.started = true;
          this.needsStart = true;
          this.kick();
        }
        return;
      case 'connected':
        this.subscriptionId = signal.subscriptionId;
        this.connected = true;
        this.emit(signal);
        return;
      case 'disconnected':
        this.connected = false;
        this.emit(signal);
        return;
      case 'gap':
        if (!signal.eventsMayBeLost) {
          this.emit(signal);
          return;
        }
        this.heldGaps.push(signal);
        this.kick();
        return;
      default:
        this.emit(signal);
    }
  }

  // --- the delivered-set ------------------------------------------------------------------------

  private touch(id: string, changeKey: string | undefined, deleted: boolean, folder: string | undefined): void {
    this.deliveryCounter++;
    const entry = this.delivered.get(id);
    // Re-inserted so the map stays in delivery order and pruning can stop at the first young entry.
    if (entry) this.delivered.delete(id);
    // A change a re-baseline found before the stream delivered it: delivered now.
    const pending = this.pending.get(id);
    if (pending && (deleted ? pending.change.type === 'Delete' : pending.change.itemId.changeKey === changeKey)) this.pending.delete(id);
    // A version the last sync reported arrives late: the stored state covers it already.
    const synced = this.lastResults.get(id);
    if (synced !== undefined && (deleted ? synced === null : synced === changeKey)) return;
    this.delivered.set(id, { changeKey, deleted, seq: this.deliveryCounter, folder });
    if (this.delivered.size > this.stats.deliveredSetPeak) this.stats.deliveredSetPeak = this.delivered.size;
  }

  /** Remembers what a live notification delivered; returns it minus versions a recovery already emitted (or nothing when that leaves it empty). */
  private recordLive(notification: PushNotification): PushNotification | undefined {
    let dropped = false;
    const kept: NotificationEvent[] = [];
    for (const event of notification.events) {
      if (event.type !== 'Status' && event.itemId !== undefined) {
        const recovered = this.recoveredVersions.get(event.itemId.id) ?? this.recoveredBefore.get(event.itemId.id);
        const duplicate = recovered !== undefined && event.itemId.changeKey !== undefined && recovered === event.itemId.changeKey && event.type !== 'Deleted' && event.type !== 'Moved';
        this.touch(event.itemId.id, event.itemId.changeKey, event.type === 'Deleted', event.parentFolderId.id);
        // Outside moves and copies an event happens in a watched folder: its id, if not known yet.
        if (event.type !== 'Moved' && event.type !== 'Copied') this.learnFolderId(event.parentFolderId.id);
        if (event.type === 'Moved' && event.oldItemId !== undefined) this.touch(event.oldItemId.id, event.oldItemId.changeKey, true, event.oldParentFolderId.id);
        if (duplicate) {
          dropped = true;
          this.stats.suppressedLive++;
          continue;
        }
      }
      kept.push(event);
    }
    this.stats.deliveredSetSize = this.delivered.size;
    if (!dropped) return notification;
    if (kept.length === 0) return undefined;
    return { ...notification, events: kept };
  }

  /**
   * Names the one watched folder whose id is still unknown (a distinguished folder that was empty
   * at its baseline) after `id`, when no watched folder has that id: Exchange notifies only for
   * the subscribed folders.
   */
  private learnFolderId(id: string): void {
    let unknown: FolderState | undefined;
    for (const folder of this.folders) {
      if (folder.folderId === id) return;
      if (folder.folderId === undefined) {
        if (unknown) {
          // Several unknown: remember it until syncs name the others (bounded).
          if (this.unattributed.size < 32) this.unattributed.add(id);
          return;
        }
        unknown = folder;
      }
    }
    if (unknown) unknown.folderId = id;
  }

  /** Retries {@link learnFolderId} for ids live events named while several folders were unknown. */
  private resolveFolderIds(): void {
    const ids = [...this.unattributed];
    this.unattributed.clear();
    for (const id of ids) this.learnFolderId(id);
  }

  /**
   * Forgets deliveries made before `marker` (a sync that started after them covers them) and later
   * ones of exactly the versions the sync reported; remembers those versions for late deliveries.
   */
  private prune(marker: number, results: Map<string, string | null>): void {
    for (const [id, entry] of this.delivered) {
      const synced = results.get(id);
      const covered = synced !== undefined && (entry.deleted ? synced === null : synced === entry.changeKey);
      if (entry.seq <= marker || covered) this.delivered.delete(id);
    }
    this.lastResults = results;
    this.stats.deliveredSetSize = this.delivered.size;
  }

  /**
   * Items the stream delivered before `marker` into `folder` that the sync did not mention: created
   * after the state and deleted since (the sync collapses such an item to nothing), as Deletes.
   */
  private vanished(folder: FolderState, marker: number, results: Map<string, string | null>): SyncItemChange[] {
    const out: SyncItemChange[] = [];
    if (folder.folderId === undefined) return out;
    for (const [id, entry] of this.delivered) {
      if (entry.seq > marker) break;
      if (!entry.deleted && entry.folder === folder.folderId && !results.has(id)) out.push({ type: 'Delete', itemId: { id } });
    }
    return out;
  }

  // --- scheduling -------------------------------------------------------------------------------

  private maybeRebaseline(): void {
    if (this.running || !this.connected || this.heldGaps.length > 0 || this.delivered.size === 0) return;
    const due = this.deliveryCounter > 0 && (this.delivered.size >= this.config.rebaselineEvents || performance.now() - this.lastSyncAt >= this.config.rebaselineIntervalMs);
    if (!due) return;
    this.wantRebaseline = true;
    this.kick();
  }

  private kick(): void {
    if (this.running || this.signal.aborted) return;
    this.running = this.work()
      .catch((error: unknown) => {
        if (!this.signal.aborted) this.logger.error('EWS gap recovery failed', { error });
      })
      .finally(() => {
        this.running = undefined;
        if (!this.signal.aborted && (this.heldGaps.length > 0 || this.needsStart)) this.kick();
      });
  }

  private async work(): Promise<void> {
    while (!this.signal.aborted) {
      if (this.needsStart) {
        this.needsStart = false;
        await this.start();
      } else if (this.heldGaps.length > 0) {
        const gaps = this.heldGaps;
        this.heldGaps = [];
        await this.recover(gaps);
      } else if (this.wantRebaseline) {
        this.wantRebaseline = false;
        await this.rebaseline();
      } else return;
    }
  }

  // --- the runs ---------------------------------------------------------------------------------

  /**
   * Before the first Subscribe: loads the stored states; without any, takes the baseline now, so
   * that every change after it — also those before the subscription exists — can be recovered.
   * Rejects only when the store cannot be read (an `EwsCheckpointError`, fatal for the source as
   * for pull); a failed baseline is logged and leaves folders without a state (their gaps then say
   * `no-baseline`).
   */
  prepare(): Promise<void> {
    let storeError: unknown;
    const run = this.load().catch((error: unknown) => {
      if (this.signal.aborted) return;
      if (error instanceof EwsCheckpointError) storeError = error;
      else this.logger.error('EWS gap recovery could not take its baseline', { checkpointKey: this.config.key, error });
    });
    this.running = run;
    return run.finally(() => {
      if (this.running === run) this.running = undefined;
      if (storeError !== undefined) throw storeError;
      if (!this.signal.aborted && (this.heldGaps.length > 0 || this.needsStart)) this.kick();
    });
  }

  private async load(): Promise<void> {
    let stored: Awaited<ReturnType<CheckpointStore['get']>>;
    try {
      stored = await this.config.store.get(this.config.key);
    } catch (error) {
      throw error instanceof EwsCheckpointError ? error : new EwsCheckpointError(`Could not read the sync states of checkpoint key ${JSON.stringify(this.config.key)}`, { cause: error });
    }
    const states = stored?.syncStates ?? {};
    let any = false;
    for (const folder of this.folders) {
      const state = states[folder.key];
      if (state !== undefined && state.trim() !== '') {
        folder.syncState = state;
        any = true;
      }
      folder.folderId ??= states[folder.key + FOLDER_ID_SUFFIX];
    }
    if (any && stored) {
      this.catchUpFrom = new Date(stored.updatedAt);
      return;
    }
    await this.rebaseline();
  }

  /** After the first `subscribed`: catches up from stored states (the subscription now queues what comes next). */
  private async start(): Promise<void> {
    const since = this.catchUpFrom;
    if (since === undefined) return;
    this.catchUpFrom = undefined;
    const gap: GapEvent = { type: 'gap', subscriptionId: this.subscriptionId, reason: 'subscription-lost', from: since, to: new Date(), subscriptionKept: false, eventsMayBeLost: true };
    this.logger.info('EWS streaming catch-up from stored sync states', { checkpointKey: this.config.key, since: since.toISOString() });
    await this.recover([gap]);
  }

  /** Syncs every folder from its state and emits what the stream did not deliver; then reports `gaps`. */
  private async recover(gaps: readonly GapEvent[]): Promise<void> {
    this.stats.recoveries++;
    this.rotateRecovered();
    const requestsBefore = this.stats.requests;
    const marker = this.deliveryCounter;
    const results = new Map<string, string | null>();
    const synced: FolderState[] = [];
    let recovered = 0;
    let unrecoverable: GapUnrecoverableReason | undefined;
    let cause: unknown;
    // Changes an earlier re-baseline found but the stream never delivered: they belong to this gap.
    if (this.pending.size > 0) {
      const byFolder = new Map<FolderState, SyncItemChange[]>();
      for (const p of this.pending.values()) {
        const list = byFolder.get(p.folder) ?? [];
        list.push(p.change);
        byFolder.set(p.folder, list);
      }
      this.pending.clear();
      for (const [folder, changes] of byFolder) recovered += this.emitRecovered(folder, changes);
    }
    for (const folder of this.folders) {
      if (folder.unavailable) {
        unrecoverable ??= folder.unavailable;
        continue;
      }
      try {
        if (folder.syncState === undefined) {
          // Never baselined (its first sync failed): what the gap lost is not knowable; take one now.
          unrecoverable ??= 'no-baseline';
          await this.syncFolder(folder, 'baseline', results);
        } else {
          recovered += await this.syncFolder(folder, 'recover', results);
          synced.push(folder);
        }
      } catch (error) {
        if (this.signal.aborted) throw error;
        // Whatever went wrong, the gap is still reported: as lossy, with the cause.
        const reason = error instanceof FolderUnavailable ? error.reason : 'failed';
        if (reason === 'failed') this.logger.warn('EWS gap recovery failed for a folder; the gap stays lossy', { folder: folder.key, error });
        unrecoverable ??= reason;
        cause ??= error instanceof FolderUnavailable ? error.error : error;
      }
    }
    // After every folder's sync, which may have named folders: items the stream delivered that the
    // syncs no longer mention were deleted inside the window.
    this.resolveFolderIds();
    for (const folder of synced) recovered += this.emitRecovered(folder, this.vanished(folder, marker, results));
    this.prune(marker, results);
    await this.persistQuietly();
    this.lastSyncAt = performance.now();
    const requests = this.stats.requests - requestsBefore;
    for (const [i, gap] of gaps.entries()) {
      const share = i === 0 ? recovered : 0;
      this.emit({
        ...gap,
        eventsMayBeLost: unrecoverable !== undefined,
        recovered: share,
        recoveryRequests: i === 0 ? requests : 0,
        ...(unrecoverable === undefined ? {} : { unrecoverable }),
        ...(cause instanceof EwsBridgeError ? { recoveryError: cause } : {}),
      });
    }
  }

  /** Syncs every folder forward while the stream is healthy (nothing emitted); bounds the delivered-set. */
  private async rebaseline(): Promise<void> {
    this.stats.rebaselines++;
    this.rotateRecovered();
    const marker = this.deliveryCounter;
    const results = new Map<string, string | null>();
    const synced: FolderState[] = [];
    this.generation++;
    // Still pending after a whole healthy interval: the stream delivered them under another version, or never will.
    for (const [id, p] of this.pending) if (p.generation < this.generation - 1) this.pending.delete(id);
    for (const folder of this.folders) {
      if (folder.unavailable) continue;
      try {
        if (folder.syncState === undefined) await this.syncFolder(folder, 'baseline', results);
        else {
          await this.syncFolder(folder, 'rebaseline', results);
          synced.push(folder);
        }
      } catch (error) {
        if (this.signal.aborted) throw error;
        if (!(error instanceof FolderUnavailable)) throw error;
        this.logger.warn('EWS gap recovery cannot sync a folder', { folder: folder.key, reason: error.reason });
      }
    }
    this.resolveFolderIds();
    for (const folder of synced) this.keepPending(folder, this.vanished(folder, marker, results));
    this.prune(marker, results);
    await this.persistQuietly();
    this.lastSyncAt = performance.now();
    this.stats.pending = this.pending.size;
  }

  /**
   * Stores the states as they are now, once every notification emitted so far is done (in the
   * background, in order; skipped when the source stops first: what was not handled must come
   * again). A failure is logged: the states stay in memory and the next sync writes them again.
   */
  private persistQuietly(): Promise<void> {
    const syncStates: Record<string, string> = {};
    for (const folder of this.folders) {
      if (folder.syncState !== undefined) syncStates[folder.key] = folder.syncState;
      if (folder.folderId !== undefined) syncStates[folder.key + FOLDER_ID_SUFFIX] = folder.folderId;
    }
    if (Object.keys(syncStates).length === 0) return Promise.resolve();
    const handled = Promise.all([...this.unacked].map((h) => h.done));
    this.persisting = this.persisting.then(async () => {
      if ((await Promise.race([handled, this.stopped])) === 'stopped' && this.unacked.size > 0) return;
      try {
        await this.config.store.set(this.config.key, { syncStates });
      } catch (error) {
        this.logger.error('Could not store the sync states', { checkpointKey: this.config.key, error });
      }
    });
    return Promise.resolve();
  }

  /**
   * Pages through one folder's changes. `recover` emits what the stream missed; `rebaseline` keeps
   * it as pending; `baseline` (no state) only takes the state. Returns the events emitted.
   */
  private async syncFolder(folder: FolderState, mode: 'baseline' | 'rebaseline' | 'recover', results: Map<string, string | null>): Promise<number> {
    let emitted = 0;
    let state = mode === 'baseline' ? undefined : folder.syncState;
    for (;;) {
      let message: SyncFolderItemsMessage;
      try {
        message = await this.call(folder, state);
      } catch (error) {
        if (error instanceof EwsResponseError && error.responseCode === 'ErrorInvalidSyncStateData' && state !== undefined) {
          // The state is gone (too old, another server): a new baseline, and the gap stays lossy.
          this.logger.warn('EWS rejected the stored sync state; taking a new baseline — events since it may be lost', { folder: folder.key });
          folder.syncState = undefined;
          await this.syncFolder(folder, 'baseline', results);
          throw new FolderUnavailable('invalid-sync-state', error);
        }
        throw error;
      }
      for (const change of message.changes) {
        if (change.parentFolderId !== undefined) folder.folderId = change.parentFolderId.id;
        results.set(change.itemId.id, change.type === 'Delete' ? null : (change.itemId.changeKey ?? ''));
      }
      if (mode === 'recover') emitted += this.emitRecovered(folder, message.changes);
      else if (mode === 'rebaseline') this.keepPending(folder, message.changes);
      if (message.syncState === undefined || message.syncState.trim() === '') throw new EwsParseError('The SyncFolderItems response carried no SyncState');
      state = message.syncState;
      folder.syncState = state;
      // A page that ends the range, or one that made no progress (never loop on it).
      if (message.includesLastItemInRange !== false || message.changes.length === 0) return emitted;
    }
  }

  /** One SyncFolderItems call with the sources' retry discipline; a folder that cannot be synced throws {@link FolderUnavailable}. */
  private call(folder: FolderState, syncState: string | undefined): Promise<SyncFolderItemsMessage> {
    const source = this.config.source;
    const envelope = buildSyncFolderItemsRequest({
      folder: folder.spec,
      ...(syncState === undefined ? {} : { syncState }),
      maxChangesReturned: this.config.maxChangesReturned,
      withParentFolderId: true,
      requestServerVersion: source.requestServerVersion,
      ...(source.impersonation ? { impersonation: source.impersonation } : {}),
    });
    return withRetry(
      async () => {
        this.stats.requests++;
        const message = await firstMessage({ soapAction: SOAP_ACTIONS.SyncFolderItems, envelope }, { ...this.endpoint, requestTimeoutMs: source.requestTimeoutMs, signal: this.signal });
        if (message?.kind !== 'SyncFolderItems') throw new EwsParseError('The SyncFolderItems response carried no SyncFolderItems response message');
        return message;
      },
      {
        retry: source.retry,
        signal: this.signal,
        plan: (error) => this.plan(error),
        onRetry: (notice) => this.logger.info('EWS SyncFolderItems failed; retrying', { folder: folder.key, attempt: notice.attempt, delayMs: notice.delayMs }),
        logger: this.logger,
      },
    ).catch((error: unknown) => {
      if (this.signal.aborted) throw error;
      if (error instanceof EwsResponseError) {
        if (error.responseCode === 'ErrorFolderNotFound') {
          folder.unavailable = 'folder-deleted';
          throw new FolderUnavailable('folder-deleted', error);
        }
        if (error.responseCode === 'ErrorAccessDenied' || error.responseCode === 'ErrorImpersonateUserDenied' || error.responseCode === 'ErrorImpersonationDenied') {
          folder.unavailable = 'access-denied';
          throw new FolderUnavailable('access-denied', error);
        }
        if (error.responseCode === 'ErrorInvalidSyncStateData') throw error;
      }
      throw new FolderUnavailable('failed', error);
    });
  }

  private plan(error: unknown): FailurePlan {
    if (this.signal.aborted) return { kind: 'fatal', reason: 'connection-error' };
    if (error instanceof EwsResponseError && error.responseCode === 'ErrorInvalidSyncStateData') return { kind: 'fatal', reason: 'server-error' };
    return planForCall(error);
  }

  private keepPending(folder: FolderState, changes: readonly SyncItemChange[]): void {
    for (const change of changes) {
      if (this.wasDelivered(change) || this.toEvents(folder, change, new Date()).length === 0) {
        this.pending.delete(change.itemId.id);
        continue;
      }
      this.pending.set(change.itemId.id, { change, folder, generation: this.generation });
    }
  }

  private wasDelivered(change: SyncItemChange): boolean {
    const entry = this.delivered.get(change.itemId.id);
    if (!entry) return false;
    if (change.type === 'Delete') return entry.deleted;
    return !entry.deleted && entry.changeKey !== undefined && entry.changeKey === change.itemId.changeKey;
  }

  /** Live duplicates of what the run before the previous one recovered have arrived by now. */
  private rotateRecovered(): void {
    this.recoveredBefore = this.recoveredVersions;
    this.recoveredVersions = new Map();
  }

  /** Emits the changes the stream did not deliver, as one notification per page. */
  private emitRecovered(folder: FolderState, changes: readonly SyncItemChange[]): number {
    const at = new Date();
    const events: ObjectChangedEvent[] = [];
    for (const change of changes) {
      if (this.wasDelivered(change)) continue;
      const made = this.toEvents(folder, change, at);
      if (made.length === 0) continue;
      events.push(...made);
      if (change.itemId.changeKey !== undefined && change.type !== 'Delete') this.recoveredVersions.set(change.itemId.id, change.itemId.changeKey);
    }
    if (events.length === 0) return 0;
    this.stats.recoveredEvents += events.length;
    const mailbox = this.config.source.mailbox;
    this.emit({
      type: 'notification',
      notification: { subscriptionId: this.subscriptionId, moreEvents: false, events, ...(mailbox === undefined ? {} : { mailbox }) },
    });
    return events.length;
  }

  /** The events a change stands for, within the subscription's event types. */
  private toEvents(folder: FolderState, change: SyncItemChange, at: Date): ObjectChangedEvent[] {
    const wants = (type: EventType): boolean => this.eventTypes.has(type);
    const timeStamp = `${at.toISOString().slice(0, 19)}Z`;
    const itemId: Id = change.itemId.changeKey === undefined ? { id: change.itemId.id } : { id: change.itemId.id, changeKey: change.itemId.changeKey };
    const parentFolderId: Id = { id: change.parentFolderId?.id ?? folder.folderId ?? fallbackFolderId(folder.spec) };
    const event = (type: ObjectChangedEvent['type']): ObjectChangedEvent => ({ type, timeStamp, itemId, parentFolderId, recovered: true });
    switch (change.type) {
      case 'Delete':
        return wants('Deleted') ? [event('Deleted')] : [];
      case 'Update':
      case 'ReadFlagChange':
        return wants('Modified') ? [event('Modified')] : [];
      case 'Create': {
        // The stream delivered an earlier version: to the consumer this is a change, not a new item.
        const known = this.delivered.get(change.itemId.id);
        if (known && !known.deleted) return wants('Modified') ? [event('Modified')] : [];
        const out: ObjectChangedEvent[] = [];
        if (wants('Created')) out.push(event('Created'));
        if (wants('NewMail') && change.itemClass !== undefined && MESSAGE_CLASSES.has(change.itemClass)) out.push(event('NewMail'));
        return out;
      }
    }
  }
}

/** The folder as the subscription named it, when its id is not known yet (see docs/retry-and-gaps.md). */
function fallbackFolderId(spec: FolderSpec): string {
  if (typeof spec === 'string') return spec;
  if ('id' in spec) return spec.id;
  return spec.distinguishedId;
}
