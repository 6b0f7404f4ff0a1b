/**
 * The contract every CheckpointStore keeps (lib/checkpoint/checkpoint-store.ts), as a suite run
 * against each implementation.
 */
import { describe, expect, it } from 'vitest';
import type { CheckpointStore } from '../../lib/checkpoint/checkpoint-store.js';

/** The contract every store keeps, run against each implementation. */
export function storeContract(name: string, create: () => CheckpointStore): void {
  describe(`${name} (store contract)`, () => {
    it('is empty at first, then returns what was set, stamped', async () => {
      const store = create();
      expect(await store.get('k')).toBeUndefined();
      const before = Date.now();
      await store.set('k', { watermark: 'w1' });
      const got = await store.get('k');
      expect(got?.watermark).toBe('w1');
      expect(Date.parse(got?.updatedAt ?? '')).toBeGreaterThanOrEqual(before - 1000);
    });

    it('merges: a field left out keeps its stored value', async () => {
      const store = create();
      await store.set('k', { watermark: 'w1' });
      await store.set('k', { syncStates: { inbox: 's1' } });
      await store.set('k', { watermark: 'w2' });
      expect(await store.get('k')).toMatchObject({ watermark: 'w2', syncStates: { inbox: 's1' } });
    });

    it('keeps keys apart and forgets on delete', async () => {
      const store = create();
      await store.set('a', { watermark: 'wa' });
      await store.set('b', { watermark: 'wb' });
      await store.delete('a');
      await store.delete('never-set');
      expect(await store.get('a')).toBeUndefined();
      expect((await store.get('b'))?.watermark).toBe('wb');
    });

    it('hands out copies', async () => {
      const store = create();
      await store.set('k', { syncStates: { inbox: 's1' } });
      const got = await store.get('k');
      (got?.syncStates as Record<string, string>).inbox = 'mutated';
      expect((await store.get('k'))?.syncStates?.inbox).toBe('s1');
    });

    it('applies overlapping sets in call order, none lost', async () => {
      const store = create();
      await Promise.all([
        ...Array.from({ length: 100 }, (_, i) => store.set(`key-${i}`, { watermark: `w${i}` })),
        ...Array.from({ length: 50 }, (_, i) => store.set('same', { watermark: `s${i}` })),
      ]);
      for (let i = 0; i < 100; i++) expect((await store.get(`key-${i}`))?.watermark).toBe(`w${i}`);
      expect((await store.get('same'))?.watermark).toBe('s49');
    });
  });
}

