#!/usr/bin/env python3
"""moto_server whose IAM check sees the resources and actions AWS sees.

Usage: motoiam.py [moto_server arguments], with INITIAL_NO_AUTH_ACTION_COUNT
set (moto then checks every request after that many against the caller's
IAM policies).

Stock moto 5.2 evaluates a policy's Action, Effect and Resource patterns,
but for DynamoDB, KMS, Lambda and EventBridge it matches the Resource
against "*" (it never works out which table, key, function or bus a request
targets), so every statement scoped to an ARN is denied; and it checks a
DynamoDB transaction as the action dynamodb:TransactWriteItems, which AWS
does not have (AWS checks each item's PutItem, UpdateItem, DeleteItem or
ConditionCheckItem on its table), and Invoke as lambda:Invoke (AWS:
lambda:InvokeFunction). This launcher supplies, for those four services,
the (action, resource ARN) pairs AWS authorizes a request by, and has moto's
own evaluator check each pair; every other service is checked as moto does.

Condition keys are still not evaluated: moto knows only the StringEquals
operator and only for the few keys it fills in (sts:ExternalId), and treats
any other condition as satisfied. The IAM proof checks that explicitly.
"""

import json
import sys
from urllib.parse import unquote, urlparse

try:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.server import main as moto_main
except ImportError as e:
    sys.exit(f"motoiam.py: {e}: pip install 'moto[server]'")


def params(handler):
    body = handler.body
    if isinstance(body, dict):  # DynamoHandler has parsed it already
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        return json.loads(body or "{}")
    except ValueError:
        return {}


def arn(handler, service, resource):
    return f"arn:aws:{service}:{handler.region}:{handler.current_account}:{resource}"


def dynamodb_targets(h, action):
    p = params(h)

    def table(name):
        return name if name.startswith("arn:") else arn(h, "dynamodb", f"table/{name}")

    if action == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        return [(kinds[k], table(v["TableName"])) for item in p.get("TransactItems", []) for k, v in item.items() if k in kinds]
    if action == "TransactGetItems":
        return [("GetItem", table(item["Get"]["TableName"])) for item in p.get("TransactItems", []) if "Get" in item]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table(name)) for name in p.get("RequestItems", {})]
    if "TableName" not in p:
        return [(action, "*")]
    if action in ("Query", "Scan") and p.get("IndexName"):
        return [(action, table(p["TableName"]) + "/index/" + p["IndexName"])]
    return [(action, table(p["TableName"]))]


def kms_targets(h, action):
    from moto.kms.models import kms_backends
    from moto.kms.utils import _deserialize_ciphertext_blob
    import base64

    p = params(h)
    key = p.get("KeyId") or p.get("TargetKeyId")
    if not key and p.get("CiphertextBlob"):
        try:
            key = _deserialize_ciphertext_blob(base64.b64decode(p["CiphertextBlob"])).key_id
        except Exception:
            key = None
    if not key:
        return [(action, "*")]
    try:
        return [(action, kms_backends[h.current_account][h.region].describe_key(key).arn)]
    except Exception:
        # An unknown key: authorize by the ARN it names, then let KMS answer NotFound.
        return [(action, key if key.startswith("arn:") else arn(h, "kms", f"key/{key}"))]


def lambda_targets(h, action):
    parts = urlparse(h.uri).path.split("/")
    name = unquote(parts[3]) if len(parts) > 3 and parts[2] == "functions" else None
    iam_action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(action, action)
    if not name:
        return [(iam_action, "*")]
    if name.startswith("arn:"):
        return [(iam_action, name)]
    if ":function:" in name:  # 123456789012:function:NAME
        return [(iam_action, f"arn:aws:lambda:{h.region}:{name}")]
    return [(iam_action, arn(h, "lambda", f"function:{name}"))]


def events_targets(h, action):
    p = params(h)
    if action != "PutEvents":
        name = p.get("EventBusName") or p.get("Name")
        return [(action, name if name and name.startswith("arn:") else arn(h, "events", f"event-bus/{name}") if name else "*")]
    buses = {e.get("EventBusName") or "default" for e in p.get("Entries", [])}
    return [(action, b if b.startswith("arn:") else arn(h, "events", f"event-bus/{b}")) for b in sorted(buses)]


def authorize_each(targets):
    """An _authenticate_and_authorize_normal_action that checks every
    (action, resource) pair the request needs with moto's evaluator."""

    def authorize(self, resource="*"):
        original = type(self)._get_action
        for action, res in targets(self, original(self)):
            self._get_action = lambda action=action: action
            try:
                ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, res)
            finally:
                del self._get_action

    return authorize


def patch():
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.kms.responses import KmsResponse

    for cls, targets in ((DynamoHandler, dynamodb_targets), (KmsResponse, kms_targets),
                         (LambdaResponse, lambda_targets), (EventsHandler, events_targets)):
        cls._authenticate_and_authorize_normal_action = authorize_each(targets)


if __name__ == "__main__":
    patch()
    moto_main(sys.argv[1:])
