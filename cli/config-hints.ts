/**
 * What turns a config error into one a person can act on: the closest known name for a typo
 * ("did you mean"), the fields an object may have, and the offending lines of a file that does not
 * parse, with a caret under the column — values that look like secrets masked.
 *
 * @packageDocumentation
 */
import type { z } from 'zod';

/**
 * Edit distance with adjacent transpositions (optimal string alignment), case-insensitive: the
 * typos people make in field names are a dropped, doubled, swapped or wrongly-cased letter.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const rows: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...Array<number>(t.length).fill(0)]);
  for (let j = 0; j <= t.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[s.length]![t.length]!;
}

/**
 * The candidate closest to `word`, when it is close enough to be the intended one: at most a
 * third of the word's letters wrong (at least one, at most three). `undefined` otherwise.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

type AnySchema = z.core.$ZodType;
interface Def {
  readonly type: string;
  readonly innerType?: AnySchema;
  readonly in?: AnySchema;
  readonly options?: readonly AnySchema[];
  readonly shape?: Readonly<Record<string, AnySchema>>;
  readonly element?: AnySchema;
  readonly values?: readonly unknown[];
}

function defOf(schema: AnySchema): Def {
  return schema._zod.def as unknown as Def;
}

/** The schemas a value may match, through optional/default/union/pipe wrappers. */
function alternatives(schema: AnySchema): AnySchema[] {
  const def = defOf(schema);
  if (def.innerType !== undefined && ['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch'].includes(def.type)) return alternatives(def.innerType);
  if (def.type === 'pipe' && def.in !== undefined) return alternatives(def.in);
  if (def.type === 'union' && def.options !== undefined) return def.options.flatMap(alternatives);
  return [schema];
}

/** An object variant of a tagged union (`type: 'basic'`) applies only when the value carries its tag. */
function variantFits(def: Def, value: unknown): boolean {
  const tag = def.shape?.['type'];
  if (tag === undefined || typeof value !== 'object' || value === null || !('type' in value)) return true;
  const tagDef = defOf(tag);
  return tagDef.type !== 'literal' || (tagDef.values ?? []).includes((value as { type: unknown }).type);
}

/**
 * The field names an object at `path` of the config may have, given what the file holds there
 * (so `ews.auth` of `type: basic` offers basic's fields, not NTLM's). Empty when unknown.
 */
export function fieldsAt(schema: AnySchema, path: readonly PropertyKey[], raw: unknown): string[] {
  let current = alternatives(schema);
  let value: unknown = raw;
  for (const part of path) {
    const next: AnySchema[] = [];
    for (const s of current) {
      const def = defOf(s);
      if (def.type === 'object' && typeof part === 'string' && def.shape?.[part] !== undefined && variantFits(def, value)) next.push(def.shape[part]);
      if (def.type === 'array' && typeof part === 'number' && def.element !== undefined) next.push(def.element);
    }
    value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[part] : undefined;
    current = next.flatMap(alternatives);
  }
  const names = new Set<string>();
  for (const s of current) {
    const def = defOf(s);
    if (def.type === 'object' && def.shape !== undefined && variantFits(def, value)) for (const key of Object.keys(def.shape)) if (key !== '$schema') names.add(key);
  }
  return [...names];
}

// A key whose value may be a secret (password, token, secret value) but not the fields that only
// name where one lives (passwordEnv, tokenFile, headerName).
const SECRET_LINE = /^(\s*-?\s*["']?[\w-]*(?:password|token|secret|value)["']?\s*:\s*)(\S.*)$/i;
const NAMES_A_PLACE = /(?:env|file|name)["']?\s*:/i;

function masked(line: string): string {
  const m = SECRET_LINE.exec(line);
  if (m === null || NAMES_A_PLACE.test(m[1]!)) return line;
  return `${m[1]!}****`;
}

/**
 * The line `line` (1-based) of `text` and the one before it, numbered, with a caret under
 * `column` (1-based). Tabs show as `→` so the caret stays aligned; values of keys that may hold
 * a secret are masked.
 */
export function sourceExcerpt(text: string, line: number, column: number): string {
  const lines = text.split(/\r?\n/);
  const at = Math.min(Math.max(1, line), lines.length);
  const width = String(at).length;
  const show = (n: number): string => `    ${String(n).padStart(width)} | ${masked(lines[n - 1] ?? '').replace(/\t/g, '→')}`;
  const out = at > 1 ? [show(at - 1), show(at)] : [show(at)];
  out.push(`    ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  return out.join('\n');
}

/** Line and column (1-based) of a 0-based offset into `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  return { line, column: before.length - before.lastIndexOf('\n') };
}
