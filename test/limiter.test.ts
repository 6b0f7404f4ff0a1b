/**
 * Limiter: at most `max` tasks at once, the rest in arrival order; a waiter whose signal aborts
 * leaves the queue without taking a slot; a failing task frees its slot.
 */
import { describe, expect, it } from 'vitest';
import { Limiter } from '../lib/sources/limiter.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Limiter', () => {
  it('runs at most max tasks at once, the others in arrival order', async () => {
    const limiter = new Limiter(2);
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const runs = gates.map((gate, i) =>
      limiter.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await gate.promise;
        running--;
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.resolve();
    gates[2]!.resolve();
    gates[3]!.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(peak).toBe(2);
  });

  it('a failing task frees its slot and rejects its caller only', async () => {
    const limiter = new Limiter(1);
    const failing = limiter.run(() => Promise.reject(new Error('boom')));
    const next = limiter.run(() => Promise.resolve('ok'));
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
  });

  it('a waiter whose signal aborts leaves the queue without running and without taking a slot', async () => {
    const limiter = new Limiter(1);
    const gate = deferred();
    const first = limiter.run(() => gate.promise);
    const controller = new AbortController();
    let ranAborted = false;
    const aborted = limiter.run(async () => {
      ranAborted = true;
    }, controller.signal);
    const third = limiter.run(() => Promise.resolve('third'));
    controller.abort(new Error('member left'));
    await expect(aborted).rejects.toThrow('member left');
    gate.resolve();
    await first;
    await expect(third).resolves.toBe('third');
    expect(ranAborted).toBe(false);
    // All slots are free again: two tasks run at once would deadlock on a leaked slot.
    const both = deferred();
    const a = limiter.run(() => both.promise);
    both.resolve();
    await a;
  });

  it('rejects at once for a signal already aborted while the slots are taken', async () => {
    const limiter = new Limiter(1);
    const gate = deferred();
    const first = limiter.run(() => gate.promise);
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(limiter.run(() => Promise.resolve(1), controller.signal)).rejects.toThrow('gone');
    gate.resolve();
    await first;
  });
  it('says when a call would run at once, and calls onFree when a slot frees with nobody waiting', async () => {
    const limiter = new Limiter(1);
    const freed: boolean[] = [];
    limiter.onFree = () => freed.push(limiter.free);
    expect(limiter.free).toBe(true);
    const first = deferred();
    const second = deferred();
    const runs = [limiter.run(() => first.promise), limiter.run(() => second.promise)];
    expect(limiter.free).toBe(false);
    first.resolve();
    await tick();
    // The slot went straight to the waiter: not free, onFree not called.
    expect(limiter.free).toBe(false);
    expect(freed).toEqual([]);
    second.resolve();
    await Promise.all(runs);
    expect(freed).toEqual([true]);
    expect(limiter.free).toBe(true);
  });
});
