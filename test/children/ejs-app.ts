/**
 * Child process of test/helpers/ejs-side-by-side.ts: runs one sample app (see
 * test/helpers/ejs-app-runner.ts) in a process of its own, so an app that crashes (an unhandled
 * rejection) shows as an exit. Its first IPC message is the task; `'stop'` ends the app and the
 * process. Reports go back over IPC.
 */
import { startApp, type AppReport, type AppTask } from '../helpers/ejs-app-runner.js';

const send = (report: AppReport): void => {
  process.send?.(report);
};

let stop: (() => Promise<void>) | undefined;
process.on('message', (message: AppTask | 'stop') => {
  if (message === 'stop') {
    void (stop?.() ?? Promise.resolve()).finally(() => process.exit(0));
    return;
  }
  startApp(message, send).then(
    (s) => {
      stop = s;
      send({ type: 'ready' });
    },
    (error: unknown) => {
      send({ type: 'failed', error: String(error) });
      process.exit(1);
    },
  );
});
