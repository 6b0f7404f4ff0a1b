/**
 * Client (c), the floor: a bare `node:http` request whose body goes through a streaming TextDecoder
 * into saxes configured as our parser configures it (no namespace processing: EnvelopeParser
 * resolves the few prefixes it needs itself), with handlers that only count closing event elements —
 * what any XML-parsing client pays for the same bytes on the same socket, with no dispatch at all.
 * It subscribes and opens GetStreamingEvents with minimal hand-written requests. Client (d),
 * `consumeHttpOnly`, is the same without XML parsing.
 */
import http from 'node:http';
import { SaxesParser } from 'saxes';
import { Recorder, type ConsumeOptions, type ConsumeResult } from './recorder.js';
import { T_NS } from './stream-fixture.js';

const SUBSCRIBE_BODY =
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="${T_NS}">` +
  `<soap:Body><m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe></soap:Body></soap:Envelope>`;

function post(url: string, agent: http.Agent, body: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'text/xml; charset=utf-8' } }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Subscribes and opens GetStreamingEvents with the minimal requests; the recorder's stop destroys
 * the response and the agent. `undefined` when a request failed (the recorder then has the error).
 */
async function openStream(options: ConsumeOptions): Promise<{ recorder: Recorder; response: http.IncomingMessage | undefined }> {
  const agent = new http.Agent({ keepAlive: true });
  let response: http.IncomingMessage | undefined;
  const recorder = new Recorder(options, () => {
    response?.destroy();
    agent.destroy();
  });
  try {
    const subscribed = await post(options.url, agent, SUBSCRIBE_BODY);
    const answer: Buffer[] = [];
    for await (const chunk of subscribed) answer.push(chunk as Buffer);
    const id = /SubscriptionId>([^<]+)</.exec(Buffer.concat(answer).toString('utf8'))?.[1] ?? '';
    response = await post(
      options.url,
      agent,
      SUBSCRIBE_BODY.replace(/<m:Subscribe>.*<\/m:Subscribe>/, `<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>${id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>30</m:ConnectionTimeout></m:GetStreamingEvents>`),
    );
  } catch (error) {
    recorder.finish('error', error);
    return { recorder, response: undefined };
  }
  response.on('end', () => recorder.finish('disconnected'));
  response.on('error', (error) => recorder.finish('error', error));
  return { recorder, response };
}

/** Counts what `events` says has arrived (per chunk, not per event: the floors have no per-event work). */
function record(recorder: Recorder, events: number): void {
  if (events > recorder.count) {
    recorder.addCount(events - recorder.count, recorder.arrived());
    recorder.checkComplete();
  }
}

/** Consumes one stream with bare saxes, counting events only. */
export async function consumeSaxes(options: ConsumeOptions): Promise<ConsumeResult> {
  const { recorder, response } = await openStream(options);
  if (!response) return recorder.done;
  const decoder = new TextDecoder('utf-8');
  const sax = new SaxesParser({ fragment: true });
  let events = 0;
  // The fixture writes every event element with the t: prefix (see stream-fixture.ts).
  sax.on('closetag', (tag) => {
    if (tag.name.startsWith('t:') && tag.name.endsWith('Event')) events++;
  });
  sax.on('error', (error) => recorder.finish('error', error));
  response.on('data', (chunk: Buffer) => {
    sax.write(decoder.decode(chunk, { stream: true }));
    record(recorder, events);
  });
  return recorder.done;
}

/** Closing tags of EWS's event elements with the fixture's `t:` prefix (stream-fixture.ts writes four of these types). */
const EVENT_END = /<\/t:(?:NewMail|Created|Deleted|Modified|Moved|Copied|FreeBusyChanged)Event>/g;

/**
 * Client (d), below the floor: the same requests, the body decoded to text as (c) decodes it, and
 * event closing tags found by a regular expression — no XML parsing at all. What receiving and
 * decoding the bytes costs in this process, cold and warm: no XML client can be faster.
 */
export async function consumeHttpOnly(options: ConsumeOptions): Promise<ConsumeResult> {
  const { recorder, response } = await openStream(options);
  if (!response) return recorder.done;
  const decoder = new TextDecoder('utf-8');
  let events = 0;
  let carry = ''; // the end of the last text, where a closing tag may be cut
  response.on('data', (chunk: Buffer) => {
    const text = carry + decoder.decode(chunk, { stream: true });
    EVENT_END.lastIndex = 0;
    let last = 0;
    while (EVENT_END.test(text)) {
      events++;
      last = EVENT_END.lastIndex;
    }
    const cut = text.lastIndexOf('<');
    carry = cut >= last ? text.slice(cut) : '';
    record(recorder, events);
  });
  return recorder.done;
}
