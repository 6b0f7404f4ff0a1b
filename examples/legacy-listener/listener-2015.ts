/**
 * The legacy app as it was written around 2015: an HTTP endpoint that Exchange POSTs
 * `SendNotification` messages to, parsed the way many listeners of the time parsed them — with
 * regular expressions over the body, relying on Exchange's `t:` prefixes — and answered with a
 * hand-written `SendNotificationResult`. (Naive, but correct for the envelopes Exchange and the
 * bridge's soap-forwarder send.) It is deliberately left exactly as it was: behind the
 * soap-forwarder it runs unchanged.
 *
 * Its subscription side (ews-javascript-api's `SubscribeToPushNotifications`) is in
 * subscribe-2015.ts.
 */
import http from 'node:http';
import type { Crm } from './crm.js';

function result(status: 'OK' | 'Unsubscribe'): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>' +
    '<SendNotificationResult xmlns="http://schemas.microsoft.com/exchange/services/2006/messages">' +
    '<SubscriptionStatus>' + status + '</SubscriptionStatus>' +
    '</SendNotificationResult></soap:Body></soap:Envelope>'
  );
}

export function startListener(crm: Crm, port: number, host: string, callback: (server: http.Server) => void): http.Server {
  const server = http.createServer(function (req, res) {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', function (chunk: string) {
      body += chunk;
    });
    req.on('end', function () {
      const sub = /<t:SubscriptionId>([^<]*)<\/t:SubscriptionId>/.exec(body);
      const subscriptionId = sub ? sub[1]! : '';
      const events = /<t:(\w+)Event>([\s\S]*?)<\/t:\1Event>/g;
      let m: RegExpExecArray | null;
      while ((m = events.exec(body)) !== null) {
        const type = m[1]!;
        if (type === 'Status') {
          crm.heartbeat();
          continue;
        }
        const id = /<t:(ItemId|FolderId) Id="([^"]*)"(?: ChangeKey="([^"]*)")?/.exec(m[2]!);
        if (!id) continue;
        crm.file({ subscriptionId, type, kind: id[1] === 'ItemId' ? 'item' : 'folder', id: id[2]!, changeKey: id[3] });
      }
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.end(result(crm.answer()));
    });
  });
  server.listen(port, host, function () {
    callback(server);
  });
  return server;
}
