/**
 * The example configuration `ews-push-bridge forward --print-config` prints: every field, with a
 * comment saying what it is for, so that the package explains itself without the README at hand.
 * `test/cli-package.test.ts` checks that it passes `forward --check` as printed.
 *
 * @packageDocumentation
 */

/** An annotated `forward` configuration in YAML (save it as `bridge.yaml`). */
export const EXAMPLE_CONFIG_YAML = `# ews-push-bridge forward --config bridge.yaml
# Every field, its default and its meaning: docs/configuration.md in the package.
# Secrets never go in this file: only the name of the environment variable
# (…Env) or the file (…File) that holds them.

ews:
  url: https://mail.contoso.com/EWS/Exchange.asmx   # ends in /EWS/Exchange.asmx
  auth:
    type: ntlm                      # basic, ntlm, bearer or none
    username: CONTOSO\\svc-ews-bridge
    passwordEnv: EWS_PASSWORD       # or passwordFile: /etc/ews-push-bridge/password
  requestServerVersion: Exchange2016
  startupTimeoutSeconds: 60         # every mailbox must connect within this at start-up
  # caFile: contoso-root-ca.pem     # a private CA, trusted besides the public roots
  # anchorMailbox: sales@contoso.com  # X-AnchorMailbox when all mailboxes share a server

mode: hybrid                        # streaming, pull or hybrid (watermarks + low latency)

mailboxes:                          # impersonated; leave out to watch the account's own
  - sales@contoso.com
  - support@contoso.com
  - address: rooms@contoso.com      # per-mailbox folders and event types
    folders: [calendar]
    eventTypes: [Created, Modified, Deleted]

folders: [inbox]                    # distinguished names, or { id: "…" }
eventTypes: [NewMail, Created, Moved, Deleted]   # leave out for all
# pollIntervalSeconds: 60           # hybrid: the safety-net poll; pull: between polls

listener:                           # the legacy push listener: what the app passed to Subscribe
  url: http://crm.contoso.local/ExchangePush/Listener.asmx
  statusFrequencyMinutes: 5         # keep-alive period, and how long failed posts are retried
  sharedSecret:                     # a header the listener can check
    headerName: X-Bridge-Secret
    valueEnv: BRIDGE_SHARED_SECRET

checkpoint:                         # pull/hybrid: resume from here after a restart
  file: /var/lib/ews-push-bridge/checkpoints.json

# coordinator:                      # several forward processes share the mailboxes
#   urlEnv: BRIDGE_REDIS_URL        # through Redis leases (or url: redis://host:6379);
#   leaseTtlSeconds: 15             # checkpoints then go to Redis: drop checkpoint.file
                                    # (needs: npm install ioredis)

metrics:                            # GET /metrics (Prometheus) and /healthz
  port: 9464
  host: 127.0.0.1

log:
  level: info                       # debug, info, warn, error
  format: text                      # text, or json for log collectors
`;
