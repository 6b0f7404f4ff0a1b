/**
 * The simulator's mailboxes make their initial folders (root, msgfolderroot, inbox, calendar, …) on
 * first use: a folder's number and id must not depend on which folder was looked at first, and a
 * lookup by id or by number must find a folder nobody has named yet.
 */
import { describe, expect, it } from 'vitest';
import { Mailbox } from '../lib/testing/mailbox-store.js';

const INITIAL = ['root', 'msgfolderroot', 'inbox', 'calendar', 'contacts', 'deleteditems', 'drafts', 'junkemail', 'outbox', 'sentitems', 'tasks', 'notes', 'journal'];

describe('Mailbox initial folders', () => {
  it('gives every initial folder the same number, id and parent whatever the order of first use', () => {
    const forward = new Mailbox(7, 3, 'room@contoso.com');
    const backward = new Mailbox(7, 3, 'room@contoso.com');
    const first = INITIAL.map((name) => forward.folder(name, false)!);
    const last = [...INITIAL].reverse().map((name) => backward.folder(name, false)!).reverse();
    expect(last).toEqual(first);
    expect(first.map((f) => f.no)).toEqual(INITIAL.map((_, i) => i + 1));
    expect(first[0]!.parentId).toBeUndefined();
    expect(first[1]!.parentId).toBe(first[0]!.id);
    for (const folder of first.slice(2)) expect(folder.parentId).toBe(first[1]!.id);
  });

  it('finds an initial folder nobody named yet by its id and by its number', () => {
    const named = new Mailbox(7, 3, 'room@contoso.com');
    const calendar = named.folder('calendar', false)!;
    const fresh = new Mailbox(7, 3, 'room@contoso.com');
    fresh.folder('inbox', false);
    expect(fresh.folderById(calendar.id)).toEqual(calendar);
    expect(new Mailbox(7, 3, 'room@contoso.com').folderByNo(calendar.no)).toEqual(calendar);
    expect(new Mailbox(7, 3, 'room@contoso.com').folder(calendar.id, false)).toEqual(calendar);
  });

  it('numbers folders made later after the initial ones, as before', () => {
    const mailbox = new Mailbox(7, 3, 'room@contoso.com');
    mailbox.folder('inbox', false);
    const custom = mailbox.folder('Projects', true)!;
    expect(custom.no).toBe(INITIAL.length + 1);
    expect(custom.parentId).toBe(mailbox.folder('msgfolderroot', false)!.id);
    expect(mailbox.folder('INBOX', false)).toBe(mailbox.folder('inbox', false));
    expect(mailbox.folder('archiveinbox', false)!.no).toBe(INITIAL.length + 2);
  });
});
