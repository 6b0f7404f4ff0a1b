/**
 * Child process of test/pull-restart.test.ts: a pull consumer with a FileCheckpointStore that logs
 * every event it handles (`<pid> <seq> <watermark>`, one O_APPEND write per line, so a kill cannot
 * tear a line) and acknowledges each notification after its last line is written. The parent kills
 * it with SIGKILL at random moments and starts it again.
 *
 * Prints `ready` once its first GetEvents succeeded (its starting watermark is checkpointed by then).
 *
 * Usage: tsx test/children/pull-consumer.ts <ews-url> <checkpoint-file> <log-file>
 */
import { appendFileSync } from 'node:fs';
import { FileCheckpointStore } from '../../lib/checkpoint/file-store.js';
import { deferAck } from '../../lib/sources/ack.js';
import { pullNotifications } from '../../lib/sources/pull.js';
import { sequenceOf } from '../../lib/testing/events.js';

const [url, checkpointFile, logFile] = process.argv.slice(2);
if (url === undefined || checkpointFile === undefined || logFile === undefined) {
  process.stderr.write('usage: pull-consumer <ews-url> <checkpoint-file> <log-file>\n');
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

pullNotifications({
  url,
  auth: { type: 'basic', username: 'alice@contoso.com', password: 'secret' },
  checkpoint: new FileCheckpointStore({ path: checkpointFile }),
  pollIntervalMs: 20,
  emitStatusEvents: false,
  retry: { minDelayMs: 20, maxDelayMs: 200 },
  onLifecycle: (event) => {
    if (event.type === 'connected') process.stdout.write('ready\n');
  },
}).subscribe({
  next: (notification) => {
    const ack = deferAck(notification);
    void (async () => {
      for (const event of notification.events) {
        appendFileSync(logFile, `${process.pid} ${sequenceOf(event) ?? -1} ${event.watermark ?? '-'}\n`);
        // Spread the handling over time, so kills land in the middle of notifications too.
        if (Math.random() < 0.3) await sleep(1);
      }
      await ack();
    })();
  },
  error: (error: unknown) => {
    process.stderr.write(`pull consumer failed: ${String(error)}\n`);
    process.exit(1);
  },
});
