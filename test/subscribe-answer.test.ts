/**
 * The streaming Subscribe's success answer read by its text (lib/ews/subscribe-answer.ts): it must
 * give the id the envelope parser gives for the exact answer Exchange writes, and recognise nothing
 * else (which then goes to the parser). postSoapRecognizing: recognised answers skip the parser;
 * every other answer (errors, faults, a body too large, an answer in pieces) is handled as postSoap
 * handles it.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { EwsEnvelopeTooLargeError } from '../lib/errors.js';
import { envelopeError } from '../lib/ews/response-errors.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { streamingSubscribeSuccessId } from '../lib/ews/subscribe-answer.js';
import { createEwsAgent, postSoap, postSoapRecognizing, type SoapRequest } from '../lib/ews/transport.js';
import { postStreamingSubscribe } from '../lib/sources/endpoint.js';
import { NO_ERROR, responseEnvelope, responseMessage } from '../lib/testing/response-writer.js';
import { serverBusyFault, subscribeErrorResponse, subscribeResponse } from './fixtures/ews-wire.js';
import { closedAfterEach } from './helpers/closed-after-each.js';

const ID = 'HQBzaW0tbWJ4MDEuZXdzLXNpbXVsYXRvci5sb2NhbBAAAABFd3NTaW1TdQABAAAAAAAB';

/** The answer exactly as the simulator (and Exchange 2013–2019, Exchange Online) writes it. */
function exchangeAnswer(id = ID, inner = `<m:SubscriptionId>${id}</m:SubscriptionId>`): string {
  return responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, inner)]);
}

function parsedId(text: string): string | undefined {
  const envelope = parseEnvelope(text, { httpStatus: 200 });
  const message = envelope.body.type === 'response' ? envelope.body.messages[0] : undefined;
  return message?.kind === 'Subscribe' && message.responseClass === 'Success' ? message.subscriptionId : undefined;
}

describe('streamingSubscribeSuccessId', () => {
  it("reads the id of Exchange's success answer, as the parser does", () => {
    const text = exchangeAnswer();
    expect(streamingSubscribeSuccessId(text)).toBe(ID);
    expect(parsedId(text)).toBe(ID);
    const other = exchangeAnswer('AbC+/=09');
    expect(streamingSubscribeSuccessId(other)).toBe('AbC+/=09');
    expect(parsedId(other)).toBe('AbC+/=09');
    // Another server version (Exchange 2010 names its schema version so).
    const exchange2010 = text.replace('MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"', 'MajorVersion="14" MinorVersion="3" MajorBuildNumber="123" MinorBuildNumber="4" Version="Exchange2010_SP2"');
    expect(exchange2010).not.toBe(text);
    expect(streamingSubscribeSuccessId(exchange2010)).toBe(ID);
    expect(parsedId(exchange2010)).toBe(ID);
  });

  it('recognises no other text (the parser reads it instead)', () => {
    const text = exchangeAnswer();
    const others = [
      subscribeResponse(ID), // another (valid) layout of the same answer
      subscribeErrorResponse('ErrorNonExistentMailbox', 'no mailbox'),
      serverBusyFault(1000),
      exchangeAnswer(ID, `<m:SubscriptionId>${ID}</m:SubscriptionId><m:Watermark>AQAAAA==</m:Watermark>`),
      exchangeAnswer(''),
      exchangeAnswer('id with spaces'),
      exchangeAnswer('&amp;escaped'),
      exchangeAnswer('é'),
      `\ufeff${text}`,
      `${text}\n`,
      ` ${text}`,
      `${text}${text}`,
      text.replace('<?xml version="1.0" encoding="utf-8"?>', ''),
      text.replace(/<s:/g, '<soap:').replace(/<\/s:/g, '</soap:').replace('xmlns:s=', 'xmlns:soap='),
      text.replace('ResponseClass="Success"', 'ResponseClass="Warning"'),
      text.replace('>NoError<', '>ErrorInternalServerError<'),
      text.replace('MajorVersion="15"', 'MajorVersion="15" MajorVersion="16"'),
      text.replace('MajorVersion="15"', 'MajorVersion="x"'),
      text.replace('Version="V2017_07_11"', 'Version="V2017_07_11" Extra="1"'),
      text.replace('http://schemas.microsoft.com/exchange/services/2006/messages', 'urn:other'),
      text.replace('</s:Envelope>', ''),
      text.slice(0, -1),
      '',
    ];
    for (const other of others) expect(streamingSubscribeSuccessId(other), other).toBeUndefined();
    // Latin-1 text of a non-ASCII byte never matches the ASCII pattern.
    expect(streamingSubscribeSuccessId(Buffer.from(exchangeAnswer('ä'), 'utf8').toString('latin1'))).toBeUndefined();
  });
});

const REQUEST: SoapRequest = { soapAction: 'http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe', envelope: '<x/>' };
const { servers, agents } = closedAfterEach();

async function serve(answer: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/EWS/Exchange.asmx`;
}

function agentFor(url: string): ReturnType<typeof createEwsAgent> {
  const agent = createEwsAgent({ url });
  agents.push(agent);
  return agent;
}

/** Writes `text` in pieces of `size` bytes, each its own chunk. */
function inPieces(res: ServerResponse, text: string, size: number, status = 200): void {
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8' });
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length) {
      res.end();
      return;
    }
    res.write(bytes.subarray(at, (at += size)));
    setImmediate(next);
  };
  next();
}

describe('postSoapRecognizing', () => {
  it('answers a recognised body (in one piece or many) without the parser', async () => {
    for (const size of [1 << 20, 7, 1]) {
      const url = await serve((res) => inPieces(res, exchangeAnswer(), size));
      const parsed: string[] = [];
      const id = await postSoapRecognizing(REQUEST, { url, agent: agentFor(url) }, streamingSubscribeSuccessId, (envelope) => {
        parsed.push(envelope.body.type);
        return 'parsed';
      });
      expect(id).toBe(ID);
      expect(parsed).toEqual([]);
    }
  });

  it('parses any other answer, with the outcome of postSoap', async () => {
    /** What a call settles with: the value, or the error's class and message. */
    const outcome = (call: Promise<unknown>): Promise<unknown> =>
      call.then(
        (value) => ({ value }),
        (error: Error) => ({ error: error.constructor.name, message: error.message }),
      );
    const viaPostSoap = async (url: string): Promise<string> => {
      const envelope = await postSoap(REQUEST, { url, agent: agentFor(url) });
      const error = envelopeError(envelope);
      if (error) throw error;
      const message = envelope.body.type === 'response' ? envelope.body.messages[0] : undefined;
      if (message?.kind !== 'Subscribe' || message.subscriptionId === undefined) throw new Error('no id');
      return message.subscriptionId;
    };
    const padded = exchangeAnswer().replace('<m:ResponseMessages>', `<m:ResponseMessages>${' '.repeat(10_000)}`);
    const answers: [string, number, number][] = [
      [subscribeResponse('sub-9'), 200, 5], // another layout of a success
      [subscribeErrorResponse('ErrorNonExistentMailbox', 'gone'), 200, 1 << 20],
      [serverBusyFault(1000), 500, 1 << 20],
      [serverBusyFault(1000), 200, 1 << 20],
      ['<html>proxy error</html>', 200, 1 << 20],
      ['', 200, 1],
      [`${exchangeAnswer()}${exchangeAnswer()}`, 200, 1 << 20],
      [exchangeAnswer().slice(0, -3), 200, 100],
      [padded, 200, 1000], // larger than what is held back for the recogniser: parsed as it streams in
    ];
    const seen = new Set<string>();
    for (const [text, status, size] of answers) {
      const url = await serve((res) => inPieces(res, text, size, status));
      const expected = await outcome(viaPostSoap(url));
      expect(await outcome(postStreamingSubscribe(REQUEST, { url, agent: agentFor(url) }, 5_000)), text.slice(0, 80)).toEqual(expected);
      seen.add(JSON.stringify(expected).slice(0, 30));
    }
    // The answers above cover successes and several kinds of failure.
    expect(seen.size).toBeGreaterThan(4);
  });

  it('keeps the size cap: an answer larger than maxEnvelopeBytes fails as with postSoap', async () => {
    const url = await serve((res) => inPieces(res, exchangeAnswer(), 1 << 20));
    const options = { url, agent: agentFor(url), maxEnvelopeBytes: 200 };
    await expect(postSoap(REQUEST, options)).rejects.toBeInstanceOf(EwsEnvelopeTooLargeError);
    await expect(postSoapRecognizing(REQUEST, options, streamingSubscribeSuccessId, () => 'parsed')).rejects.toBeInstanceOf(EwsEnvelopeTooLargeError);
    await expect(postSoapRecognizing(REQUEST, { ...options, maxEnvelopeBytes: 0 }, streamingSubscribeSuccessId, () => 'parsed')).rejects.toBeInstanceOf(RangeError);
  });
});
