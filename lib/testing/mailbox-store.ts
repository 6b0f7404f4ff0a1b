/**
 * The simulator's mailboxes: folders, items, and the per-mailbox event log. The log is the single
 * source of truth: each event gets the next sequence number of its mailbox, pull subscriptions read
 * it from a watermark, streaming and push subscriptions from a cursor, and SyncFolderItems collapses
 * it into item changes.
 */
import type { Id } from '../model.js';
import type { DeliveredEvent, SimulatedEvent, SimulatedFolderEvent } from './events.js';
import { encodeChangeKey, encodeWatermark, folderIdFor, itemIdFor } from './ids.js';
import { DISTINGUISHED_FOLDER_NAMES } from './request-reader.js';

/** A folder of a simulated mailbox. */
export interface Folder {
  readonly no: number;
  readonly id: string;
  /** Distinguished name (`inbox`) or display name of a custom folder. */
  readonly name: string;
  readonly parentId: string | undefined;
}

interface ItemState {
  readonly id: string;
  folderId: string;
  changeKey: string;
}

/** One change of an item in a folder, for SyncFolderItems. */
export interface FolderChange {
  readonly seq: number;
  readonly kind: 'create' | 'update' | 'delete' | 'read';
  readonly itemId: string;
  readonly changeKey: string;
  readonly isRead?: boolean;
}

// Folders every mailbox has from the start, under msgfolderroot (root ⟶ msgfolderroot ⟶ these).
const STANDARD_FOLDERS = ['inbox', 'calendar', 'contacts', 'deleteditems', 'drafts', 'junkemail', 'outbox', 'sentitems', 'tasks', 'notes', 'journal'];
// Their folder numbers (root 1, msgfolderroot 2, then the list in order): fixed, so a folder's id
// is the same whether it was looked at first or last.
const INITIAL_FOLDERS = ['root', 'msgfolderroot', ...STANDARD_FOLDERS];
const INITIAL_FOLDER_NO: ReadonlyMap<string, number> = new Map(INITIAL_FOLDERS.map((name, i) => [name, i + 1]));

/** One simulated mailbox. */
export class Mailbox {
  /** Sequence number of the newest event (0 before the first). */
  seq = 0;
  readonly events: DeliveredEvent[] = [];
  private readonly folders = new Map<string, Folder>();
  private readonly foldersById = new Map<string, Folder>();
  // Made on the first item event: a mailbox nobody sends mail to (most of 10,000 subscribed ones)
  // holds two empty Maps less (~250 bytes).
  private itemMap: Map<string, ItemState> | undefined;
  private folderLogMap: Map<string, FolderChange[]> | undefined;
  private nextItemNo = 1;
  private nextFolderNo = INITIAL_FOLDERS.length + 1;
  /**
   * Whether every initial folder is in the maps. They exist from the start, but each is made (its
   * id encoded, its entries added) on first use: a Subscribe to the inbox of 10,000 fresh
   * mailboxes then makes one folder each, not 13. Ids and numbers are the same either way.
   */
  private allInitial = false;

  constructor(
    readonly serverId: number,
    readonly no: number,
    readonly address: string,
  ) {}

  private get items(): Map<string, ItemState> {
    return (this.itemMap ??= new Map());
  }

  private get folderLog(): Map<string, FolderChange[]> {
    return (this.folderLogMap ??= new Map());
  }

  /** The watermark for a sequence number of this mailbox. */
  watermarkAt(seq: number): string {
    return encodeWatermark({ serverId: this.serverId, mailboxNo: this.no, seq });
  }

  private addFolder(name: string, parentId: string | undefined, no = this.nextFolderNo++): Folder {
    const folder: Folder = { no, id: folderIdFor(this.serverId, this.no, no), name, parentId };
    this.folders.set(name.toLowerCase(), folder);
    this.foldersById.set(folder.id, folder);
    return folder;
  }

  /** The folder of this (lower-case) name, the initial ones made on first use. */
  private named(name: string): Folder | undefined {
    const existing = this.folders.get(name);
    if (existing || this.allInitial) return existing;
    const no = INITIAL_FOLDER_NO.get(name);
    if (no === undefined) return undefined;
    const parentNo = no === 1 ? undefined : no === 2 ? 1 : 2;
    return this.addFolder(name, parentNo === undefined ? undefined : folderIdFor(this.serverId, this.no, parentNo), no);
  }

  /** Makes every initial folder not made yet (before a lookup by id or number, or a walk). */
  private makeAllInitial(): void {
    if (this.allInitial) return;
    for (const name of INITIAL_FOLDERS) this.named(name);
    this.allInitial = true;
  }

  /** Finds a folder by id; `undefined` if this mailbox has none with that id. */
  folderById(id: string): Folder | undefined {
    this.makeAllInitial();
    return this.foldersById.get(id);
  }

  /** Folder by folder number (from a sync state). */
  folderByNo(no: number): Folder | undefined {
    this.makeAllInitial();
    for (const folder of this.foldersById.values()) if (folder.no === no) return folder;
    return undefined;
  }

  /**
   * Resolves a folder by id, distinguished name or custom display name. Distinguished folders
   * always exist (made on first use); custom names are made under msgfolderroot only when `create`.
   */
  folder(ref: string, create: boolean): Folder | undefined {
    const name = ref.toLowerCase();
    // An initial folder's name is never an id (ids are long base64 strings): only other refs
    // need every folder made for the lookup by id.
    const byId = INITIAL_FOLDER_NO.has(name) ? undefined : this.folderById(ref);
    if (byId) return byId;
    const existing = this.named(name);
    if (existing) return existing;
    if (!create && !DISTINGUISHED_FOLDER_NAMES.has(ref)) return undefined;
    return this.addFolder(ref, this.named('msgfolderroot')!.id);
  }

  private newestItemIn(folderId: string): ItemState | undefined {
    let newest: ItemState | undefined;
    for (const item of this.items.values()) if (item.folderId === folderId) newest = item;
    return newest;
  }

  private logChange(folderId: string, change: FolderChange): void {
    const log = this.folderLog.get(folderId) ?? [];
    log.push(change);
    this.folderLog.set(folderId, log);
  }

  /** Changes of items in a folder after `afterSeq`, in sequence order. */
  folderChanges(folderId: string, afterSeq: number): readonly FolderChange[] {
    const log = this.folderLog.get(folderId) ?? [];
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log[mid]!.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return log.slice(lo);
  }

  /** Applies an event to the mailbox and appends it to the log. */
  apply(event: SimulatedEvent): DeliveredEvent {
    const seq = this.seq + 1;
    const timeStamp = stamp(event.timeStamp);
    const watermark = this.watermarkAt(seq);
    const base = { seq, mailbox: this.address, watermark, timeStamp };
    let delivered: DeliveredEvent;

    if (event.on === 'folder') {
      const itemFree = (folder: Folder): { folderId: Id; parentFolderId: Id } => ({
        folderId: { id: folder.id, changeKey: encodeChangeKey(seq, 'folder') },
        parentFolderId: { id: folder.parentId ?? folder.id, changeKey: encodeChangeKey(seq, 'folder') },
      });
      if (event.type === 'Moved' || event.type === 'Copied') {
        const from = this.requireFolder(event.from);
        const to = this.requireFolder(event.to);
        const name = event.folder ?? `Folder ${this.nextFolderNo}`;
        const source = this.folder(name, false) ?? this.addFolder(name, from.id);
        const target = event.type === 'Moved' ? this.moveFolder(source, to.id) : this.addFolder(`${name} (copy ${seq})`, to.id);
        delivered = {
          ...base,
          type: event.type,
          ...itemFree(target),
          oldFolderId: { id: source.id },
          oldParentFolderId: { id: from.id },
        };
      } else {
        const folder = this.requireFolder(event.folder ?? 'inbox');
        const { unreadCount } = event as SimulatedFolderEvent; // narrowed by the type check above
        delivered = {
          ...base,
          type: event.type,
          ...itemFree(folder),
          ...(unreadCount === undefined ? {} : { unreadCount }),
        };
      }
    } else if (event.type === 'Moved' || event.type === 'Copied') {
      const from = this.requireFolder(event.from);
      const to = this.requireFolder(event.to);
      const source = this.pickItem(event.itemId, from.id, seq);
      const target: ItemState = { id: this.newItemId(), folderId: to.id, changeKey: encodeChangeKey(seq, 'item') };
      this.items.set(target.id, target);
      this.logChange(to.id, { seq, kind: 'create', itemId: target.id, changeKey: target.changeKey });
      if (event.type === 'Moved') {
        this.items.delete(source.id);
        this.logChange(source.folderId, { seq, kind: 'delete', itemId: source.id, changeKey: source.changeKey });
      }
      delivered = {
        ...base,
        type: event.type,
        itemId: { id: target.id, changeKey: target.changeKey },
        parentFolderId: { id: to.id, changeKey: encodeChangeKey(seq, 'folder') },
        oldItemId: { id: source.id, changeKey: source.changeKey },
        oldParentFolderId: { id: source.folderId, changeKey: encodeChangeKey(seq, 'folder') },
      };
    } else {
      const folder = this.requireFolder(event.folder ?? 'inbox');
      const creates = event.type === 'NewMail' || event.type === 'Created';
      const changeKey = encodeChangeKey(seq, 'item');
      let item: ItemState;
      if (creates) {
        const known = event.itemId === undefined ? undefined : this.items.get(event.itemId);
        item = known ?? { id: event.itemId ?? this.newItemId(), folderId: folder.id, changeKey };
        const existed = this.items.has(item.id);
        item.changeKey = changeKey;
        this.items.set(item.id, item);
        this.logChange(item.folderId, { seq, kind: existed ? 'update' : 'create', itemId: item.id, changeKey });
      } else {
        item = this.pickItem(event.itemId, folder.id, seq);
        item.changeKey = changeKey;
        if (event.type === 'Deleted') {
          this.items.delete(item.id);
          this.logChange(item.folderId, { seq, kind: 'delete', itemId: item.id, changeKey });
        } else if (event.type === 'Modified' && event.isRead !== undefined) {
          this.logChange(item.folderId, { seq, kind: 'read', itemId: item.id, changeKey, isRead: event.isRead });
        } else if (event.type === 'Modified') {
          this.logChange(item.folderId, { seq, kind: 'update', itemId: item.id, changeKey });
        }
      }
      delivered = {
        ...base,
        type: event.type,
        itemId: { id: item.id, changeKey },
        parentFolderId: { id: item.folderId, changeKey: encodeChangeKey(seq, 'folder') },
      };
    }
    this.seq = seq;
    this.events.push(delivered);
    return delivered;
  }

  private requireFolder(ref: string): Folder {
    return this.folder(ref, true)!;
  }

  private moveFolder(folder: Folder, parentId: string): Folder {
    const moved: Folder = { ...folder, parentId };
    this.folders.set(folder.name.toLowerCase(), moved);
    this.foldersById.set(folder.id, moved);
    return moved;
  }

  private newItemId(): string {
    return itemIdFor(this.serverId, this.no, this.nextItemNo++);
  }

  /** The named item, else the newest of the folder, else a fresh one (an item we never saw made). */
  private pickItem(itemId: string | undefined, folderId: string, seq: number): ItemState {
    if (itemId !== undefined) {
      const known = this.items.get(itemId);
      if (known) return known;
      return { id: itemId, folderId, changeKey: encodeChangeKey(seq, 'item') };
    }
    return this.newestItemIn(folderId) ?? { id: this.newItemId(), folderId, changeKey: encodeChangeKey(seq, 'item') };
  }

  /** The events after `afterSeq`, oldest first, without copying the log (events are in seq order, seq = index + 1). */
  *eventsAfter(afterSeq: number): Generator<DeliveredEvent> {
    for (let i = Math.max(0, afterSeq); i < this.events.length; i++) yield this.events[i]!;
  }
}

function stamp(value: Date | string | undefined): string {
  if (typeof value === 'string') return value;
  const date = value ?? new Date();
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** All mailboxes of one simulator, created on first use. */
export class MailboxStore {
  private readonly byAddress = new Map<string, Mailbox>();
  private readonly byNo = new Map<number, Mailbox>();

  constructor(private readonly serverId: number) {}

  /** The mailbox of an address (case-insensitive), created when missing and `create` is set. */
  get(address: string, create = true): Mailbox | undefined {
    const key = address.trim().toLowerCase();
    const existing = this.byAddress.get(key);
    if (existing || !create) return existing;
    const mailbox = new Mailbox(this.serverId, this.byAddress.size + 1, key);
    this.byAddress.set(key, mailbox);
    this.byNo.set(mailbox.no, mailbox);
    return mailbox;
  }

  /** The mailbox with this number (from a watermark or sync state). */
  byNumber(no: number): Mailbox | undefined {
    return this.byNo.get(no);
  }

  /** Every mailbox, in creation order. */
  all(): readonly Mailbox[] {
    return [...this.byAddress.values()];
  }
}
