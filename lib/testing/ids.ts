/**
 * Deterministic, base64-looking identifiers in the shapes Exchange uses (item and folder ids,
 * change keys, watermarks, subscription ids, sync states). Every one of them is binary underneath,
 * as Exchange's are, and the simulator decodes its own to tell a valid watermark from a foreign one.
 */

const b64 = (bytes: Buffer): string => bytes.toString('base64');

function u64(seq: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(seq));
  return buf;
}

// Exchange change keys of messages start 09 00 00 00 ("CQAAA…"), of folders 01 00 00 00 ("AQAAA…").
const CHANGE_KEY_MAGIC = Buffer.from('SQ', 'latin1');

/** A change key that carries the per-mailbox sequence number of the change that produced it. */
export function encodeChangeKey(seq: number, kind: 'item' | 'folder'): string {
  return b64(Buffer.concat([Buffer.from([kind === 'item' ? 9 : 1, 0, 0, 0]), CHANGE_KEY_MAGIC, u64(seq)]));
}

/** The sequence number inside a simulator change key, or `undefined` for any other string. */
export function decodeChangeKey(changeKey: string): number | undefined {
  const bytes = Buffer.from(changeKey, 'base64');
  if (bytes.length !== 14 || !bytes.subarray(4, 6).equals(CHANGE_KEY_MAGIC)) return undefined;
  if (b64(bytes) !== changeKey) return undefined;
  return Number(bytes.readBigUInt64BE(6));
}

/** Where a watermark points: which simulator, which mailbox, which sequence number. */
export interface WatermarkPosition {
  readonly serverId: number;
  readonly mailboxNo: number;
  readonly seq: number;
}

/** A 13-byte watermark, base64 (20 characters, like Exchange's `AAAAAGUhAAAAAAAAAQ==`). */
export function encodeWatermark(position: WatermarkPosition): string {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(position.serverId & 0xffff, 0);
  head.writeUInt16BE(position.mailboxNo & 0xffff, 2);
  return b64(Buffer.concat([head, u64(position.seq), Buffer.from([1])]));
}

/** Decodes a simulator watermark; `undefined` for anything else. */
export function decodeWatermark(watermark: string): WatermarkPosition | undefined {
  const bytes = Buffer.from(watermark, 'base64');
  if (bytes.length !== 13 || bytes[12] !== 1 || b64(bytes) !== watermark) return undefined;
  return { serverId: bytes.readUInt16BE(0), mailboxNo: bytes.readUInt16BE(2), seq: Number(bytes.readBigUInt64BE(4)) };
}

function storeId(prefix: number, serverId: number, mailboxNo: number, kind: number, n: number): string {
  const bytes = Buffer.alloc(16);
  bytes.set([prefix, 3, 0x24, 0], 0);
  bytes.write('SIM', 4, 'latin1');
  bytes.writeUInt16BE(serverId & 0xffff, 7);
  bytes.writeUInt16BE(mailboxNo & 0xffff, 9);
  bytes[11] = kind;
  bytes.writeUInt32BE(n, 12);
  return b64(bytes);
}

/** Item id n of a mailbox ("AAMkAF…" like Exchange's). */
export function itemIdFor(serverId: number, mailboxNo: number, n: number): string {
  return storeId(0, serverId, mailboxNo, 0x46, n);
}

/** Folder id n of a mailbox ("AQMkAF…" like Exchange's). */
export function folderIdFor(serverId: number, mailboxNo: number, n: number): string {
  return storeId(1, serverId, mailboxNo, 0x2e, n);
}

const HOST = Buffer.from('sim-mbx01.ews-simulator.local', 'latin1');

/** Subscription id n: length-prefixed server name + a 16-byte id, as Exchange 2013+ builds them. */
export function subscriptionIdFor(serverId: number, n: number): string {
  const len = Buffer.alloc(2);
  len.writeUInt16LE(HOST.length);
  const guid = Buffer.alloc(16);
  guid.write('EwsSimSu', 0, 'latin1');
  guid.writeUInt16BE(serverId & 0xffff, 8);
  guid.writeUInt32BE(n, 12);
  return b64(Buffer.concat([len, HOST, Buffer.from([16, 0, 0, 0]), guid]));
}

/** Where a sync state points: which mailbox folder, up to which sequence number. */
export interface SyncPosition {
  readonly serverId: number;
  readonly mailboxNo: number;
  readonly folderNo: number;
  readonly seq: number;
}

const SYNC_MAGIC = Buffer.from('H4sIAAAAAAAEAO29B2Ac', 'latin1');

/** An opaque sync state (Exchange's are gzip-looking base64 blobs). */
export function encodeSyncState(position: SyncPosition): string {
  const body = Buffer.alloc(16);
  body.writeUInt16BE(position.serverId & 0xffff, 0);
  body.writeUInt16BE(position.mailboxNo & 0xffff, 2);
  body.writeUInt32BE(position.folderNo, 4);
  body.writeBigUInt64BE(BigInt(position.seq), 8);
  return b64(Buffer.concat([SYNC_MAGIC, body]));
}

/** Decodes a simulator sync state; `undefined` for anything else. */
export function decodeSyncState(syncState: string): SyncPosition | undefined {
  const bytes = Buffer.from(syncState, 'base64');
  if (bytes.length !== SYNC_MAGIC.length + 16 || !bytes.subarray(0, SYNC_MAGIC.length).equals(SYNC_MAGIC)) return undefined;
  if (b64(bytes) !== syncState) return undefined;
  const o = SYNC_MAGIC.length;
  return {
    serverId: bytes.readUInt16BE(o),
    mailboxNo: bytes.readUInt16BE(o + 2),
    folderNo: bytes.readUInt32BE(o + 4),
    seq: Number(bytes.readBigUInt64BE(o + 8)),
  };
}
