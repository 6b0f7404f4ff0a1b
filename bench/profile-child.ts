/**
 * A bench child (see stream-child.ts) that CPU-profiles one of its passes with the inspector, from
 * just before the client starts consuming to its last event: `bench/profile-throughput.ts` runs it.
 */
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { consume, preload, type ClientKind } from './clients.js';

/** What the parent sends. */
export interface ProfileTask {
  readonly client: ClientKind;
  readonly url: string;
  /** Events per stream, in the order the parent serves them. */
  readonly passes: readonly number[];
  /** Index of the pass to profile. */
  readonly profile: number;
  /** Where the `.cpuprofile` goes. */
  readonly out: string;
}

async function run(task: ProfileTask): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  // As bench/throughput.ts does: the client's modules are loaded before the first pass, so a cold
  // profile shows the first stream, not the imports.
  await preload(task.client);
  for (let i = 0; i < task.passes.length; i++) {
    const expected = task.passes[i] as number;
    if (i === task.profile) await session.post('Profiler.start');
    const result = await consume(task.client, { url: task.url, expected, timeoutMs: 60_000 });
    if (i === task.profile) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(task.out, JSON.stringify(profile));
    }
    process.send?.({ type: 'pass', count: result.count, endedBy: result.endedBy });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

process.once('message', (task: ProfileTask) => {
  run(task).then(
    () => process.send?.({ type: 'done' }, () => process.exit(0)),
    (error: unknown) => process.send?.({ type: 'failed', error: String(error) }, () => process.exit(0)),
  );
});
