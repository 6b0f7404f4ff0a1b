/**
 * Reads Prometheus text exposition the way a scraper would, checking every line's syntax: one
 * `# TYPE` per family, every sample of a declared family (a histogram's `_bucket`/`_sum`/`_count`
 * of its family), values Prometheus accepts.
 */
import { expect } from 'vitest';

/** The samples (`name{labels}` → value) and the TYPE of each family. */
export interface PrometheusText {
  readonly samples: Map<string, number>;
  readonly types: Map<string, string>;
}

/** Parses `text`, failing the test at the first line a scraper would reject. */
export function parsePrometheus(text: string): PrometheusText {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(types.has(meta[2]!), `one TYPE for ${meta[2]}`).toBe(false);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN|Nan)$/.exec(line);
    if (!sample) throw new Error(`not a Prometheus sample line: ${line}`);
    const family = sample[1]!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(sample[1]!) || types.get(family) === 'histogram', `TYPE of ${sample[1]}`).toBe(true);
    samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]));
  }
  return { samples, types };
}
