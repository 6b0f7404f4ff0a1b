/**
 * EwsSimulator SyncFolderItems: ids only, SyncState, MaxChangesReturned paging with
 * IncludesLastItemInRange, and the collapse of a range of changes into Create/Update/Delete/ReadFlagChange.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncFolderItemsMessage } from '../lib/ews/messages.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { call, firstMessage, req } from './helpers/ews-http.js';

let sim: EwsSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const ALICE = 'alice@contoso.com';

async function sync(s: EwsSimulator, options: Parameters<typeof req.syncFolderItems>[0] = {}): Promise<SyncFolderItemsMessage> {
  const message = firstMessage((await call(s.url, req.syncFolderItems(options))).envelope);
  if (message.kind !== 'SyncFolderItems') throw new Error(`unexpected ${message.kind}`);
  return message;
}

/** Syncs until IncludesLastItemInRange, returning every change and the final state. */
async function syncAll(s: EwsSimulator, syncState: string | undefined, max: number): Promise<{ changes: SyncFolderItemsMessage['changes']; syncState: string; pages: number }> {
  const changes: Array<SyncFolderItemsMessage['changes'][number]> = [];
  let state = syncState;
  for (let pages = 1; ; pages++) {
    const message = await sync(s, { ...(state === undefined ? {} : { syncState: state }), max });
    expect(message.changes.length).toBeLessThanOrEqual(max);
    changes.push(...message.changes);
    state = message.syncState!;
    if (message.includesLastItemInRange) return { changes, syncState: state, pages };
  }
}

describe('SyncFolderItems', () => {
  it('initial sync lists existing items as Create, paged by MaxChangesReturned', async () => {
    sim = await EwsSimulator.start();
    const created = Array.from({ length: 7 }, () => sim!.deliver(ALICE, { type: 'NewMail' }));
    sim.deliver(ALICE, { type: 'NewMail', folder: 'calendar' }); // other folder
    const { changes, pages } = await syncAll(sim, undefined, 3);
    expect(pages).toBe(3);
    expect(changes.map((c) => c.type)).toEqual(Array(7).fill('Create'));
    expect(changes.map((c) => c.itemId.id)).toEqual(created.map((e) => e.itemId!.id));
  });

  it('reports later changes: Update, Delete, ReadFlagChange, moves out (Delete) and in (Create)', async () => {
    sim = await EwsSimulator.start();
    const a = sim.deliver(ALICE, { type: 'NewMail' });
    const b = sim.deliver(ALICE, { type: 'NewMail' });
    const c = sim.deliver(ALICE, { type: 'NewMail' });
    const d = sim.deliver(ALICE, { type: 'NewMail' });
    const { syncState } = await syncAll(sim, undefined, 512);
    sim.deliver(ALICE, { type: 'Modified', itemId: a.itemId!.id });
    sim.deliver(ALICE, { type: 'Deleted', itemId: b.itemId!.id });
    sim.deliver(ALICE, { type: 'Modified', itemId: c.itemId!.id, isRead: true });
    const moved = sim.deliver(ALICE, { type: 'Moved', itemId: d.itemId!.id, from: 'inbox', to: 'Archive' });
    const temp = sim.deliver(ALICE, { type: 'NewMail' });
    sim.deliver(ALICE, { type: 'Deleted', itemId: temp.itemId!.id }); // created and gone within the range: invisible
    const back = sim.deliver(ALICE, { type: 'Moved', itemId: moved.itemId!.id, from: 'Archive', to: 'inbox' });
    const { changes } = await syncAll(sim, syncState, 512);
    expect(changes).toEqual([
      { type: 'Update', itemId: { id: a.itemId!.id, changeKey: expect.any(String) }, itemClass: 'Message' },
      { type: 'Delete', itemId: { id: b.itemId!.id } },
      { type: 'ReadFlagChange', itemId: { id: c.itemId!.id, changeKey: expect.any(String) }, isRead: true },
      { type: 'Delete', itemId: { id: d.itemId!.id } },
      { type: 'Create', itemId: { id: back.itemId!.id, changeKey: expect.any(String) }, itemClass: 'Message' },
    ]);
  });

  it("the 'invalid-sync-state' fault refuses a state with ErrorInvalidSyncStateData; a call without one is answered", async () => {
    sim = await EwsSimulator.start();
    sim.deliver(ALICE, { type: 'NewMail' });
    const { syncState } = await syncAll(sim, undefined, 512);
    sim.inject({ type: 'invalid-sync-state', operation: 'SyncFolderItems' });
    expect(await sync(sim, { syncState })).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorInvalidSyncStateData' });
    expect(await sync(sim, { syncState })).toMatchObject({ responseCode: 'NoError' });
    // A first sync has no state to refuse (the fault is used up by the call all the same).
    sim.inject({ type: 'invalid-sync-state', operation: 'SyncFolderItems' });
    expect(await sync(sim)).toMatchObject({ responseClass: 'Success', changes: [expect.objectContaining({ type: 'Create' })] });
  });

  it('AdditionalProperties item:ParentFolderId adds the folder; the element names the item class', async () => {
    sim = await EwsSimulator.start();
    const mail = sim.deliver(ALICE, { type: 'NewMail' });
    const meeting = sim.deliver(ALICE, { type: 'Created', folder: 'calendar' });
    const xml = (folder: string): string =>
      `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:ParentFolderId"/></t:AdditionalProperties></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="${folder}"/></m:SyncFolderId><m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>`;
    const inbox = firstMessage((await call(sim.url, xml('inbox'))).envelope);
    const calendar = firstMessage((await call(sim.url, xml('calendar'))).envelope);
    expect(inbox.kind === 'SyncFolderItems' && inbox.changes).toEqual([
      { type: 'Create', itemId: { id: mail.itemId!.id, changeKey: expect.any(String) }, itemClass: 'Message', parentFolderId: { id: mail.parentFolderId!.id } },
    ]);
    expect(calendar.kind === 'SyncFolderItems' && calendar.changes).toEqual([
      { type: 'Create', itemId: { id: meeting.itemId!.id, changeKey: expect.any(String) }, itemClass: 'CalendarItem', parentFolderId: { id: meeting.parentFolderId!.id } },
    ]);
  });

  it('never reports an Update for an item a client was not told about, whatever the page size', async () => {
    sim = await EwsSimulator.start();
    const items = Array.from({ length: 5 }, () => sim!.deliver(ALICE, { type: 'NewMail' }));
    for (const item of items) sim.deliver(ALICE, { type: 'Modified', itemId: item.itemId!.id });
    sim.deliver(ALICE, { type: 'Deleted', itemId: items[0]!.itemId!.id });
    for (const max of [1, 2, 3, 512]) {
      const { changes } = await syncAll(sim, undefined, max);
      const known = new Set<string>();
      for (const change of changes) {
        if (change.type === 'Create') known.add(change.itemId.id);
        else expect(known.has(change.itemId.id), `${change.type} of an unknown item (max ${max})`).toBe(true);
        if (change.type === 'Delete') known.delete(change.itemId.id);
      }
      expect([...known].sort()).toEqual(items.slice(1).map((i) => i.itemId!.id).sort());
    }
  });

  it('an up-to-date sync state returns no changes and IncludesLastItemInRange', async () => {
    sim = await EwsSimulator.start();
    sim.deliver(ALICE, { type: 'NewMail' });
    const first = await sync(sim);
    const again = await sync(sim, { syncState: first.syncState! });
    expect(again).toMatchObject({ responseCode: 'NoError', includesLastItemInRange: true, changes: [] });
  });

  it('refuses a foreign sync state and an unknown folder id', async () => {
    sim = await EwsSimulator.start();
    const bad = await sync(sim, { syncState: 'H4sIAAAAAAAEAO29B2Ac' });
    expect(bad).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorInvalidSyncStateData' });
    const inbox = await sync(sim);
    const calendarState = await sync(sim, { folder: 'calendar' });
    const crossed = await sync(sim, { syncState: calendarState.syncState! });
    expect(crossed.responseCode).toBe('ErrorInvalidSyncStateData');
    expect(inbox.responseCode).toBe('NoError');
    const missing = firstMessage(
      (
        await call(
          sim.url,
          `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:FolderId Id="AAMkNoSuchFolder"/></m:SyncFolderId><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>`,
        )
      ).envelope,
    );
    expect(missing).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorFolderNotFound' });
  });

  it('syncs a folder given by FolderId from folderId()', async () => {
    sim = await EwsSimulator.start();
    const item = sim.deliver(ALICE, { type: 'Created', folder: 'Projects' });
    const id = sim.folderId(ALICE, 'Projects');
    const message = firstMessage(
      (
        await call(
          sim.url,
          `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:FolderId Id="${id}"/></m:SyncFolderId><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>`,
        )
      ).envelope,
    );
    if (message.kind !== 'SyncFolderItems') throw new Error('unexpected');
    expect(message.changes.map((c) => c.itemId.id)).toEqual([item.itemId!.id]);
  });
});
