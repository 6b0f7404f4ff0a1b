/**
 * What grew between two heap snapshots (`v8.writeHeapSnapshot`), by what holds the bytes: self
 * sizes summed per node type and name (constructor for objects, function name for closures,
 * `system / Context` for closure contexts, `(string)` for strings…), the difference divided by
 * `per` (the subscriptions added between the two snapshots).
 *
 * Run: `npx tsx bench/heap-diff.ts a.heapsnapshot b.heapsnapshot [per=1] [rows=30] [--by-retainer]`
 * (`IDLE_SNAPSHOTS=dir npx tsx bench/idle-memory.ts` writes them at 2,000 and 10,000).
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Count and self size per `type:name`. */
export type HeapTally = Map<string, { count: number; size: number }>;

/**
 * Reads a snapshot and sums self sizes per node type and name; with `byRetainer`, per node type
 * and name and those of its first strong retainer with the edge's name (`string: <- GroupMember.subscriptionId`).
 */
export function tally(path: string, byRetainer = false): HeapTally {
  const data = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = data.snapshot.meta.node_fields;
  const types = data.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const edgeCountAt = fields.indexOf('edge_count');
  const label = (i: number): string => {
    const type = types[data.nodes[i + typeAt]!] ?? '?';
    let name = data.strings[data.nodes[i + nameAt]!] ?? '?';
    // Strings and numbers are named by their content: group them by type alone.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') name = '';
    else if (name.length > 60) name = `${name.slice(0, 57)}…`;
    return `${type}:${name}`;
  };
  const retainer = new Map<number, string>();
  if (byRetainer) {
    const edgeFields = data.snapshot.meta.edge_fields;
    const edgeTypes = data.snapshot.meta.edge_types[0];
    const ew = edgeFields.length;
    const eType = edgeFields.indexOf('type');
    const eName = edgeFields.indexOf('name_or_index');
    const eTo = edgeFields.indexOf('to_node');
    let edge = 0;
    for (let i = 0; i < data.nodes.length; i += width) {
      const count = data.nodes[i + edgeCountAt]!;
      for (let k = 0; k < count; k++, edge += ew) {
        const kind = edgeTypes[data.edges[edge + eType]!];
        if (kind === 'weak' || kind === 'shortcut') continue;
        const to = data.edges[edge + eTo]!;
        if (retainer.has(to)) continue;
        const raw = data.edges[edge + eName]!;
        const name = kind === 'element' || kind === 'hidden' ? `[${kind}]` : (data.strings[raw] ?? '?');
        retainer.set(to, `${label(i)}.${name}`);
      }
    }
  }
  const out: HeapTally = new Map();
  for (let i = 0; i < data.nodes.length; i += width) {
    const key = byRetainer ? `${label(i)} <- ${retainer.get(i) ?? '(none)'}` : label(i);
    const entry = out.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += data.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

/** Rows of the difference `b − a`, largest growth first. */
export function diff(a: HeapTally, b: HeapTally, per: number): { key: string; count: number; bytes: number }[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows = [...keys].map((key) => {
    const x = a.get(key) ?? { count: 0, size: 0 };
    const y = b.get(key) ?? { count: 0, size: 0 };
    return { key, count: (y.count - x.count) / per, bytes: (y.size - x.size) / per };
  });
  return rows.sort((p, q) => q.bytes - p.bytes);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const byRetainer = process.argv.includes('--by-retainer');
  const [first, second, perArg, rowsArg] = process.argv.slice(2).filter((arg) => arg !== '--by-retainer');
  if (!first || !second) throw new Error('usage: heap-diff.ts a.heapsnapshot b.heapsnapshot [per=1] [rows=30] [--by-retainer]');
  const per = Number(perArg ?? 1) || 1;
  const rows = diff(tally(first, byRetainer), tally(second, byRetainer), per);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(`| type:name${byRetainer ? ' <- retainer.edge' : ''} | count / unit | bytes / unit |\n| --- | --- | --- |`);
  for (const row of rows.slice(0, Number(rowsArg ?? 30) || 30)) console.log(`| ${row.key} | ${row.count.toFixed(2)} | ${row.bytes.toFixed(1)} |`);
  console.log(`| total | | ${total.toFixed(1)} |`);
}
