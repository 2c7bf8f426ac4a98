"""Verifies webhook deliveries with the official `standardwebhooks` library.

Reads a JSON list of {"secret", "headers", "body"} from stdin. Each message
must verify unchanged, and must fail with its body tampered and with its
timestamp 10 minutes old. Prints one line per message; exits 1 on any
unexpected outcome. Run by tests/tests/it/webhooks.rs (CI installs the
library in a venv; see .ci/run).
"""
import json
import sys
import time

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def refuses(webhook, body, headers):
    try:
        webhook.verify(body, headers)
    except WebhookVerificationError:
        return True
    return False


def main():
    messages = json.load(sys.stdin)
    failures = 0
    for message in messages:
        webhook = Webhook(message["secret"])
        headers = message["headers"]
        body = message["body"]
        try:
            payload = webhook.verify(body, headers)
        except WebhookVerificationError as error:
            print(f"FAIL {headers.get('webhook-id')}: {error}")
            failures += 1
            continue
        tampered = refuses(webhook, body.replace("{", "{ ", 1), headers)
        old = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 600)})
        stale = refuses(webhook, body, old)
        if not (tampered and stale):
            print(f"FAIL {headers.get('webhook-id')}: tampered refused={tampered}, stale refused={stale}")
            failures += 1
            continue
        print(f"ok {headers.get('webhook-id')} {payload['type']}")
    sys.exit(1 if failures else 0)


main()
