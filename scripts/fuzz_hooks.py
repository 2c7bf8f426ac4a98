"""Schemathesis hooks for scripts/fuzz: they keep generated requests that the
document calls valid from tripping over state that no schema can describe.
They change only values that are already valid, so negative cases stay
negative.

- Idempotency-Key: a valid key becomes unique. Random keys collide ("0"
  twice, with different bodies), and the server rightly answers 422
  idempotency_key_reused; that contract has its own tests.
- expires_at (accept-risk, API keys): a valid time moves into the window the
  server accepts (in the future, within a year), which is relative to now.
- since/until (audit): valid times are put in order (until after since).
- since/until (KMS usage and analytics): a range also ends by now when only
  `since` is given, and spans at most a year.
- min_decryption_version, key_version, version (KMS): a valid number becomes
  1, the version every key has (the latest is state no schema can know).
- Secret metadata (PATCH /v1/secrets/metadata/{path}): cas_required
  becomes false (a later schema-valid write without cas would rightly get
  422 cas_required), and a delete_version_after of the document's alphabet
  becomes 768h (the server parses the duration and bounds it to 10 years,
  which no pattern says).
- replaced_by (PATCH /v1/keys/{id}), an alert rule's key_ids and a
  migration plan's scope.key_ids name keys that must exist, which no schema
  can know: a valid name becomes null (no replacement), a rule's list empty
  (every key), and a plan's key scope an algorithm scope.
- Access requests (POST /v1/access/requests): a valid resource_type becomes
  `fuzz`, the type of the policy scripts/fuzz creates (maximum duration 14
  days, so every valid duration is within it); without a covering policy
  the server rightly answers 422 no_policy. A review's modified_duration
  becomes null (above the requested duration is a 422 no schema can know).
- Uploads (POST /v1/ingestion/upload): a valid form without a format gets
  `format: sarif`; a report's format is told from its content, and random
  bytes rightly get 422 (the format cannot be told), which no schema can
  say. The job then fails on its own, after the 202.
"""

import re
import uuid
from datetime import datetime, timedelta, timezone

import schemathesis

VISIBLE_ASCII = re.compile(r"[!-~]{1,255}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _time(value):
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VISIBLE_ASCII.fullmatch(key):
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
    if isinstance(case.body, dict) and _time(case.body.get("expires_at")) is not None:
        soon = datetime.now(timezone.utc) + timedelta(days=1)
        case.body["expires_at"] = soon.isoformat().replace("+00:00", "Z")
    query = case.query or {}
    since, until = _time(query.get("since")), _time(query.get("until"))
    if since is not None and until is not None and until <= since:
        query["until"] = (since + timedelta(seconds=1)).isoformat()
        until = since + timedelta(seconds=1)
    path = getattr(getattr(case, "operation", None), "path", "") or ""
    if path.startswith("/v1/secrets/metadata/") and isinstance(case.body, dict):
        if case.body.get("cas_required") is True:
            case.body["cas_required"] = False
        after = case.body.get("delete_version_after")
        if isinstance(after, str) and re.fullmatch(r"[0-9smhd]{1,32}", after):
            case.body["delete_version_after"] = "768h"
    if path.startswith("/v1/keys") or path.startswith("/v1/kms"):
        end = until or datetime.now(timezone.utc)
        if since is not None and (end - since > timedelta(days=365) or since >= end):
            query["since"] = (end - timedelta(days=30)).isoformat()
        if "version" in query and isinstance(query["version"], int) and query["version"] >= 1:
            query["version"] = 1
        if isinstance(case.body, dict):
            if isinstance(case.body.get("replaced_by"), str):
                case.body["replaced_by"] = None
            if path.startswith("/v1/kms/analytics/alert-rules") and isinstance(case.body.get("key_ids"), list):
                case.body["key_ids"] = []
            scope = case.body.get("scope")
            if path.startswith("/v1/kms/crypto-agility/migration-plans") and isinstance(scope, dict) \
                    and isinstance(scope.get("key_ids"), list) and scope["key_ids"] and "algorithms" not in scope:
                case.body["scope"] = {"algorithms": ["ed25519"]}
            for field in ("min_decryption_version", "key_version"):
                value = case.body.get(field)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
                    case.body[field] = 1
    if path == "/v1/access/requests" and isinstance(case.body, dict):
        kind = case.body.get("resource_type")
        if isinstance(kind, str) and kind.strip() and len(kind) <= 64 and not CONTROL.search(kind):
            case.body["resource_type"] = "fuzz"
    if path.endswith("/review") and path.startswith("/v1/access/") and isinstance(case.body, dict):
        if isinstance(case.body.get("modified_duration"), (int, float)):
            case.body["modified_duration"] = None
    if path == "/v1/ingestion/upload" and isinstance(case.body, dict) and "format" not in case.body:
        if "format" not in query:
            case.body["format"] = "sarif"
