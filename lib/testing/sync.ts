/**
 * SyncFolderItems: the item changes of one folder since a sync state, ids only, at most
 * `MaxChangesReturned` per call. Each page is the exact collapse of a range of the mailbox's
 * sequence numbers (an item created and deleted inside the range does not appear; one that existed
 * before it and changed is an Update), so paging never reports an Update for an item the client was
 * never told about.
 */
import { decodeSyncState, encodeSyncState } from './ids.js';
import type { FolderChange, Mailbox } from './mailbox-store.js';
import type { SyncFolderItemsRequest } from './request-reader.js';
import { escapeXml, NO_ERROR, type MessageStatus } from './response-writer.js';

/** The answer to one SyncFolderItems: a status and the message's inner XML. */
export interface SyncAnswer {
  readonly status: MessageStatus;
  readonly inner: string;
}

interface Collapsed {
  readonly itemId: string;
  existedBefore: boolean;
  exists: boolean;
  onlyReadChanges: boolean;
  changeKey: string;
  isRead: boolean | undefined;
  lastSeq: number;
}

function idXml(id: string, changeKey?: string): string {
  return `<t:ItemId Id="${escapeXml(id)}"${changeKey === undefined ? '' : ` ChangeKey="${escapeXml(changeKey)}"`}/>`;
}

/** Answers SyncFolderItems for a mailbox (the impersonated one, or the caller's own). */
export function syncFolderItems(mailbox: Mailbox, request: SyncFolderItemsRequest, serverId: number): SyncAnswer {
  const fail = (code: string): SyncAnswer => ({ status: { code }, inner: '' });
  const ref = request.folder;
  // Delegate access to another mailbox's folder is not simulated: the caller's mailbox is used.
  const folder = 'distinguished' in ref ? mailbox.folder(ref.distinguished, false) : mailbox.folderById(ref.id);
  if (!folder) return fail('ErrorFolderNotFound');

  let fromSeq = 0;
  if (request.syncState !== undefined && request.syncState !== '') {
    const position = decodeSyncState(request.syncState);
    if (!position || position.serverId !== serverId || position.mailboxNo !== mailbox.no || position.folderNo !== folder.no || position.seq > mailbox.seq) {
      return fail('ErrorInvalidSyncStateData');
    }
    fromSeq = position.seq;
  }

  const ignore = new Set(request.ignore);
  const changes: readonly FolderChange[] = mailbox.folderChanges(folder.id, fromSeq);
  const items = new Map<string, Collapsed>();
  let cutoff = mailbox.seq;
  let includesLast = true;
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i]!;
    if (!items.has(change.itemId) && items.size === request.maxChangesReturned) {
      // The page is full: end it just before this change (never inside one sequence number).
      cutoff = changes[i - 1]!.seq;
      includesLast = false;
      break;
    }
    let entry = items.get(change.itemId);
    if (!entry) {
      entry = {
        itemId: change.itemId,
        existedBefore: change.kind !== 'create',
        exists: true,
        onlyReadChanges: true,
        changeKey: change.changeKey,
        isRead: undefined,
        lastSeq: change.seq,
      };
      items.set(change.itemId, entry);
    }
    entry.exists = change.kind !== 'delete';
    if (change.kind === 'read') entry.isRead = change.isRead;
    else entry.onlyReadChanges = false;
    entry.changeKey = change.changeKey;
    entry.lastSeq = change.seq;
  }

  // IdOnly gives the id; AdditionalProperties item:ParentFolderId adds the folder (as Exchange does).
  const parent = request.additionalProperties.includes('item:ParentFolderId') ? `<t:ParentFolderId Id="${escapeXml(folder.id)}"/>` : '';
  // The element names the item's class, the one thing IdOnly tells about it.
  const element = folder.name === 'calendar' ? 'CalendarItem' : folder.name === 'contacts' ? 'Contact' : folder.name === 'tasks' ? 'Task' : 'Message';
  const itemXml = (entry: Collapsed): string => `<t:${element}>${idXml(entry.itemId, entry.changeKey)}${parent}</t:${element}>`;
  const xml: string[] = [];
  for (const entry of [...items.values()].sort((a, b) => a.lastSeq - b.lastSeq)) {
    if (ignore.has(entry.itemId)) continue;
    if (!entry.existedBefore && !entry.exists) continue;
    if (!entry.exists) xml.push(`<t:Delete>${idXml(entry.itemId)}</t:Delete>`);
    else if (!entry.existedBefore) xml.push(`<t:Create>${itemXml(entry)}</t:Create>`);
    else if (entry.onlyReadChanges && entry.isRead !== undefined) {
      xml.push(`<t:ReadFlagChange>${idXml(entry.itemId, entry.changeKey)}<t:IsRead>${entry.isRead}</t:IsRead></t:ReadFlagChange>`);
    } else xml.push(`<t:Update>${itemXml(entry)}</t:Update>`);
  }
  const syncState = encodeSyncState({ serverId, mailboxNo: mailbox.no, folderNo: folder.no, seq: cutoff });
  return {
    status: NO_ERROR,
    inner:
      `<m:SyncState>${escapeXml(syncState)}</m:SyncState>` +
      `<m:IncludesLastItemInRange>${includesLast}</m:IncludesLastItemInRange>` +
      `<m:Changes>${xml.join('')}</m:Changes>`,
  };
}
