/**
 * Restart without missing mail: a pull subscription whose position (the watermark of the last
 * notification the app finished) lives in a JSON file, so a restarted process — even one that was
 * killed — resumes where it stopped.
 *
 * Run it (examples are TypeScript, run with tsx, a dev dependency of this repo):
 *
 *   npx tsx examples/pull-with-file-checkpoint.ts
 *       No URL: starts an embedded EwsSimulator and shows a restart: a first run handles some mail
 *       and stops, mail arrives while nothing runs, a second run with the same checkpoint file
 *       receives exactly that mail.
 *
 *   EWS_USERNAME=svc@contoso.com EWS_PASSWORD=… [EWS_MAILBOX=alice@contoso.com] \
 *   [CHECKPOINT_FILE=./ews-checkpoints.json] \
 *     npx tsx examples/pull-with-file-checkpoint.ts https://mail.contoso.com/EWS/Exchange.asmx
 *       A real server (Basic auth; use TLS). Ctrl+C stops it; run it again and it resumes.
 *
 * In your own app, import from 'ews-push-bridge' (and 'ews-push-bridge/testing') instead of the
 * relative paths used here so the example runs from a checkout without a build.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileCheckpointStore, deferAck, pullNotifications, type PushNotification, type SourceLifecycleEvent } from '../lib/index.js';
import { EwsSimulator } from '../lib/testing/index.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The app's work for one notification. Asynchronous on purpose: the source waits until it is
 * done before it checkpoints the notification and asks the server for more.
 *
 * After a crash, the notification that was being handled is delivered again (at-least-once), with
 * the same event watermarks: a real app makes this idempotent by event watermark, e.g. by storing
 * the watermarks it handled in the same transaction as its own changes.
 */
async function handle(n: PushNotification, run: string): Promise<void> {
  for (const event of n.events) {
    if (event.type === 'Status') continue; // the keep-alive of pull; its watermark is stored anyway
    const id = event.itemId?.id ?? event.folderId?.id ?? '';
    console.log(`[${run}] ${event.type.padEnd(10)} ${event.timeStamp} ${id.slice(0, 32)}…  watermark ${event.watermark}`);
    await pause(5); // e.g. fetch the item, write to a database
  }
}

function printLifecycle(run: string) {
  return (e: SourceLifecycleEvent): void => {
    if (e.type === 'gap') {
      console.log(`[${run}] gap ${e.reason} ${e.from.toISOString()} → ${e.to.toISOString()}${e.eventsMayBeLost ? ' — events may be missing' : ' — nothing lost'}`);
    } else if (e.type === 'subscribed' || e.type === 'retrying') {
      console.log(`[${run}] ${e.type}${e.type === 'retrying' ? ` in ${e.delayMs} ms (${e.error.code})` : ''}`);
    }
  };
}

/** Runs the source until `signal` aborts; resolves when it stopped. */
function run(name: string, options: { url: string; auth: { type: 'basic'; username: string; password: string }; mailbox?: string; checkpoint: FileCheckpointStore; signal: AbortSignal }): Promise<void> {
  return new Promise<void>((resolve) => {
    pullNotifications({
      ...options,
      folders: ['inbox'],
      pollIntervalMs: 2_000,
      emitStatusEvents: false,
      onLifecycle: printLifecycle(name),
    }).subscribe({
      next: (n) => {
        // Take over the acknowledgement while the notification is being delivered…
        const ack = deferAck(n);
        // …and give it when the work is done (here: also on failure, after logging; an app that
        // must retry would instead stop and let the next run deliver it again).
        handle(n, name).then(ack, (error: unknown) => {
          console.error(`[${name}] handler failed`, error);
          void ack();
        });
      },
      error: (error: unknown) => {
        // e.g. EwsCheckpointError for a corrupt checkpoint file: fix or delete it, never silently restart.
        console.error(`[${name}] source failed:`, error instanceof Error ? `${error.name}: ${error.message}` : error);
        process.exitCode = 1;
        resolve();
      },
      complete: () => resolve(),
    });
  });
}

const url = process.argv[2];
if (url !== undefined) {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  const mailbox = process.env['EWS_MAILBOX'];
  await run('live', {
    url,
    auth: { type: 'basic', username: process.env['EWS_USERNAME'] ?? '', password: process.env['EWS_PASSWORD'] ?? '' },
    ...(mailbox ? { mailbox } : {}),
    checkpoint: new FileCheckpointStore({ path: process.env['CHECKPOINT_FILE'] ?? './ews-checkpoints.json' }),
    signal: stop.signal,
  });
} else {
  const sim = await EwsSimulator.start();
  const dir = mkdtempSync(join(tmpdir(), 'ews-example-'));
  const path = join(dir, 'checkpoints.json');
  console.log(`No URL given: embedded EwsSimulator at ${sim.url}; checkpoints in ${path}`);
  const auth = { type: 'basic', username: 'alice@contoso.com', password: 'any password works on the simulator' } as const;
  try {
    // First run: handles two messages, then stops.
    const first = new AbortController();
    // One owner per file at a time: each run closes its store, which releases the file's lock.
    const firstStore = new FileCheckpointStore({ path });
    const firstRun = run('run 1', { url: sim.url, auth, checkpoint: firstStore, signal: first.signal });
    while (!sim.subscriptions.some((s) => s.kind === 'pull')) await pause(10);
    await pause(100);
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    await pause(2_500);
    first.abort();
    await firstRun;
    await firstStore.close();
    console.log('(stopped; two messages arrive while nothing runs)');
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    sim.deliver('alice@contoso.com', { type: 'Moved', from: 'inbox', to: 'deleteditems' });
    console.log(`checkpoint file: ${readFileSync(path, 'utf8').trim()}`);

    // Second run, same file: starts from the stored watermark and gets exactly what it missed.
    const second = new AbortController();
    const secondRun = run('run 2', { url: sim.url, auth, checkpoint: new FileCheckpointStore({ path }), signal: second.signal });
    await pause(1_000);
    second.abort();
    await secondRun;
  } finally {
    await pause(100); // let the Unsubscribe reach the simulator
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
