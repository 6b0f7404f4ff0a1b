/**
 * The business side of the example app, shared by every version: a CRM that files each mailbox
 * event it is told about. Nothing in here knows how the events arrived — which is the point: a
 * migration should not touch it.
 */

/** One mailbox event, as the CRM files it. */
export interface MailEvent {
  readonly subscriptionId: string;
  /** `NewMail`, `Created`, `Deleted`, `Modified`, `Moved`, `Copied` or `FreeBusyChanged`. */
  readonly type: string;
  readonly kind: 'item' | 'folder';
  readonly id: string;
  readonly changeKey: string | undefined;
}

export class Crm {
  /** Every event filed, in arrival order. */
  readonly filed: MailEvent[] = [];
  /** Keep-alives seen (the app's watchdog resets on each). */
  heartbeats = 0;
  /** Set when the mailbox is offboarded: the next notification is answered `Unsubscribe`. */
  offboarded = false;

  file(event: MailEvent): void {
    this.filed.push(event);
  }

  heartbeat(): void {
    this.heartbeats++;
  }

  /** What to tell Exchange after a notification. */
  answer(): 'OK' | 'Unsubscribe' {
    return this.offboarded ? 'Unsubscribe' : 'OK';
  }
}
