/**
 * The demo's scenario: which mailboxes, which events, and which faults it injects when — for each
 * mode, the failures that hurt in production, each aimed at what that mode actually uses.
 *
 * @packageDocumentation
 */
import type { EwsSimulator, FaultSpec, SimulatedEvent } from '../lib/testing/index.js';
import type { Mode } from './config-schema.js';

/**
 * Events produced this shortly before a fault may still be queued at the server when it strikes
 * (the simulator writes on its next tick), so they count as hit by it.
 */
export const IN_FLIGHT_MS = 100;

/** The account the bridge signs in with (it impersonates the mailboxes). */
export const SERVICE_ACCOUNT = 'svc-bridge@contoso.com';
/** The mailboxes the demo watches. */
export const MAILBOXES = ['alice@contoso.com', 'bob@contoso.com'] as const;
/** The first and second mailbox (the cut socket hits the first, server-busy the second). */
export const [ALICE, BOB] = MAILBOXES;

/**
 * The folders the demo's events touch: what a streaming bridge watches, so that SyncFolderItems
 * can recover its gaps (it works folder by folder).
 */
export const DEMO_FOLDERS = ['inbox', 'calendar', 'deleteditems'] as const;

/** A steady, varied mailbox: mostly new mail, some edits, moves to Deleted Items, deletes and calendar items. */
export function eventFor(i: number): SimulatedEvent {
  switch (i % 10) {
    case 5:
    case 6:
      return { type: 'Modified', folder: 'inbox' };
    case 7:
      return { type: 'Moved', from: 'inbox', to: 'deleteditems' };
    case 8:
      return { type: 'Created', folder: 'calendar' };
    case 9:
      return { type: 'Deleted', folder: 'inbox' };
    default:
      return { type: 'NewMail', folder: 'inbox' };
  }
}

/** A fault the demo injects once a share of the events has been produced. */
export interface PlannedFault {
  readonly name: string;
  readonly what: string;
  /** Injected once this fraction of the events has been produced. */
  readonly at: number;
  readonly mailboxes: readonly string[];
  readonly inject: (sim: EwsSimulator) => void;
}

/** A planned fault and what became of it. */
export interface FaultRun {
  readonly plan: PlannedFault;
  injectedAt: number | undefined;
  /** Per mailbox: the last sequence number produced before injection. */
  readonly after: Map<string, number>;
  readonly waiting: Set<string>;
  recoveredAt: number | undefined;
}

/** The three faults for `mode`: a forced Closed (pull: a forgotten subscription), a cut socket, a server-busy. */
export function planFaults(mode: Mode): PlannedFault[] {
  const streamOp = mode === 'pull' ? 'GetEvents' : 'GetStreamingEvents';
  const first: PlannedFault =
    mode === 'pull'
      ? {
          name: 'lost subscription',
          what: `the server forgot ${ALICE}'s subscription (pull has no stream to close)`,
          at: 0.25,
          mailboxes: [ALICE],
          inject: (sim) => sim.inject({ type: 'forget-subscriptions', mailbox: ALICE }),
        }
      : {
          name: 'forced Closed',
          what: 'the server ended every stream with ConnectionStatus Closed',
          at: 0.25,
          mailboxes: [...MAILBOXES],
          inject: (sim) => sim.forceClose(),
        };
  const busy: FaultSpec = { type: 'server-busy', backOffMs: 500, mailbox: BOB, operation: mode === 'streaming' ? 'GetStreamingEvents' : 'GetEvents' };
  return [
    first,
    {
      name: 'cut socket',
      what: `${ALICE}'s ${mode === 'pull' ? 'GetEvents response' : 'stream'} was cut in the middle of an envelope`,
      at: 0.5,
      mailboxes: [ALICE],
      inject: (sim) => sim.inject({ type: 'cut-mid-envelope', mailbox: ALICE, operation: streamOp }),
    },
    {
      name: 'server-busy',
      what:
        mode === 'streaming'
          ? `after a Closed, ${BOB}'s reconnect got ErrorServerBusy with BackOffMilliseconds 500`
          : `${BOB}'s next GetEvents got ErrorServerBusy with BackOffMilliseconds 500`,
      at: 0.75,
      mailboxes: [BOB],
      inject: (sim) => {
        sim.inject(busy);
        // A stream only makes a new request when it reconnects.
        if (mode === 'streaming') sim.forceClose();
      },
    },
  ];
}
