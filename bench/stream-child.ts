/**
 * One client in its own process (forked by the benches with `--import tsx --expose-gc`): it gets a
 * {@link ChildTask} over IPC, consumes one stream per pass, and reports each pass.
 *
 * Passes: `warmup` (result discarded: the JIT has seen the code path, as in any long-running
 * process); `timed` (nothing else runs); `gc` (two full GCs, then the heap baselines are read; no
 * stream); `memory` (the used heap is sampled at every notification callback and every 5 ms, the
 * old-space and large-object heap every 5 ms; peaks above the last `gc` pass's baselines are
 * reported); `latency` (the receive time of every event is returned).
 *
 * Time and memory come from separate passes: a forced full GC lets V8 drop what its optimised code
 * learnt about the (by then dead) objects of the previous stream, and the next stream runs 30–300 %
 * slower while the code re-optimises — for every client, and never in a process that is busy.
 */
import v8 from 'node:v8';
import { OrderChecker, checkCount, type OrderCheck } from './check.js';
import { consume, preload, type ClientKind } from './clients.js';

/** One pass: what to do and how many events its stream carries (`gc` consumes no stream). */
export interface ChildPass {
  /** `cold`: the first stream of a fresh process, timed like `timed` (no JIT, no warm caches). */
  readonly kind: 'cold' | 'warmup' | 'timed' | 'gc' | 'memory' | 'latency';
  readonly expected: number;
}

/** What the parent sends. */
export interface ChildTask {
  readonly client: ClientKind;
  readonly url: string;
  readonly passes: readonly ChildPass[];
  /** Per pass. */
  readonly timeoutMs: number;
  /**
   * Load the client's modules before the first pass, so that its `cpuMs` counts the stream and
   * not the imports (the timed windows start at the server and never include them). Default `false`.
   */
  readonly preload?: boolean;
}

/** What the child reports per pass. */
export interface PassReport {
  readonly type: 'pass';
  readonly pass: Exclude<ChildPass['kind'], 'gc'>;
  readonly count: number;
  readonly endedBy: string;
  readonly error: string | undefined;
  /** `process.hrtime.bigint()` of the last event, as a decimal string (the clock is system-wide). */
  readonly lastEventNs: string;
  readonly check: OrderCheck;
  /**
   * `memory` passes (bytes): heap used after GC before the pass; the peak growth of the whole
   * used heap above it (young-generation garbage included, so it is bounded below by the nursery
   * size V8 chose for the process); and the peak growth of the old-space and large-object heap
   * (what survived the young generation); and the young generation's size at the end of the pass
   * (both semi-spaces, as V8 commits them), which bounds how much garbage the used heap can hold.
   */
  readonly heap:
    | { readonly baseline: number; readonly peakGrowth: number; readonly retainedGrowth: number; readonly youngGeneration: number }
    | undefined;
  /** `latency` passes: receive time of each event (ns). */
  readonly times: Float64Array | undefined;
  /**
   * CPU time of the whole child process (user + system, all threads: GC helpers included) over
   * the pass, ms: subscribe, stream and teardown. Unlike the elapsed time it hardly moves with the
   * load other processes put on the machine.
   */
  readonly cpuMs: number;
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run the child with --expose-gc');
  collect();
  collect();
}

/** The young generation's committed size (V8 grows it, up to a limit, as bytes survive scavenges). */
function youngGeneration(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Data that survived the young generation: old space and large objects. (Code space is left out:
 * the re-optimisation that follows a forced GC grows it in every client alike.)
 */
function retainedHeap(): number {
  let used = 0;
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name === 'old_space' || space.space_name === 'large_object_space') used += space.space_used_size;
  }
  return used;
}

/**
 * Samples the whole used heap at every notification callback (cheap) and every 5 ms, and the
 * old-space and large-object heap every 5 ms.
 */
function heapSampler(): { sample: () => void; stop: () => { total: number; retained: number } } {
  let total = 0;
  let retained = 0;
  const sample = (): void => {
    const used = v8.getHeapStatistics().used_heap_size;
    if (used > total) total = used;
  };
  const sampleBoth = (): void => {
    sample();
    const old = retainedHeap();
    if (old > retained) retained = old;
  };
  const timer = setInterval(sampleBoth, 5);
  return {
    sample,
    stop: () => {
      clearInterval(timer);
      sampleBoth();
      return { total, retained };
    },
  };
}

async function run(task: ChildTask): Promise<void> {
  let baseline: { total: number; retained: number } | undefined;
  if (task.preload === true) await preload(task.client);
  for (const pass of task.passes) {
    if (pass.kind === 'gc') {
      gc();
      baseline = { total: v8.getHeapStatistics().used_heap_size, retained: retainedHeap() };
      continue;
    }
    const checker = task.client === 'saxes' || task.client === 'http' ? undefined : new OrderChecker(pass.expected);
    if (pass.kind === 'memory' && baseline === undefined) {
      gc();
      baseline = { total: v8.getHeapStatistics().used_heap_size, retained: retainedHeap() };
    }
    const sampler = pass.kind === 'memory' ? heapSampler() : undefined;
    const cpuBefore = process.cpuUsage();
    const result = await consume(task.client, {
      url: task.url,
      expected: pass.expected,
      recordTimes: pass.kind === 'latency',
      timeoutMs: task.timeoutMs,
      ...(checker ? { onKey: (key: string) => checker.add(key) } : {}),
      ...(sampler ? { onCallback: sampler.sample } : {}),
    });
    const cpu = process.cpuUsage(cpuBefore);
    const peaks = sampler?.stop();
    const heap =
      peaks && baseline
        ? {
            baseline: baseline.total,
            peakGrowth: peaks.total - baseline.total,
            retainedGrowth: peaks.retained - baseline.retained,
            youngGeneration: youngGeneration(),
          }
        : undefined;
    const check = checker ? checker.result() : checkCount(result.count, pass.expected);
    const report: PassReport = {
      type: 'pass',
      pass: pass.kind,
      count: result.count,
      endedBy: result.endedBy,
      error: result.error,
      lastEventNs: result.lastEventNs.toString(),
      check,
      heap,
      times: result.times,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
    process.send?.(report);
    // Let the teardown (Unsubscribe, socket close) finish before the next stream starts.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

process.once('message', (task: ChildTask) => {
  // Exit explicitly: a client may keep sockets or timers alive after its teardown.
  const exit = (message: object): void => {
    process.send?.(message, () => process.exit(0));
  };
  run(task).then(
    () => exit({ type: 'done' }),
    (error: unknown) => exit({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
