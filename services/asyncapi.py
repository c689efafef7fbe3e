"""The services' AsyncAPI 3.0 documents: FastStream's, finished where it cannot say what we do.

FastStream 0.7 (`app.schema.to_specification()`) describes each subscriber and publisher of
`services/<svc>/app.py` as a channel with one fixed address, and gives every message a
`correlationId` at `$message.header#/correlation_id`. Two things it cannot express:

- The due streams are one per shard (`nudges:due:{s00}` ... `{sNN}`, NUDGE_SHARDS): one
  channel whose address has a `shard` parameter. FastStream 0.7's channels have no
  parameters, so the app declares shard 00 and `finish` turns it into `nudges:due:{shard}`.
- Our entries carry no headers: one field, `__data__`, holds the event's JSON (FastStream's
  own framing is never written). A correlation id therefore points at the payload: the
  event's `event_id`, or a rejected or dead entry's `entry_id` (the entry it is about); a
  payload without such a field gets none.

`finish` is pure; `document` runs FastStream's generator and finishes its output. Both the
committed files (`nudge schema asyncapi docs/asyncapi`) and tests/unit/test_asyncapi.py use it.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any, Final
from urllib.parse import unquote

from couples_nudge.common.keys import Keys

__all__ = ["CORRELATION_FIELDS", "SERVICES", "SHARD_PARAMETER", "document", "due_address", "finish"]

SERVICES: Final = {
    "scheduler": "couples_nudge.scheduler.app",
    "notifier": "couples_nudge.notifier.app",
}
# Payload fields that identify a message, in order of preference.
CORRELATION_FIELDS: Final = ("event_id", "entry_id")
SHARD_PARAMETER: Final = {
    "description": "The shard's hash tag, braces included: `{s00}` to `{sNN}` where NN is "
    "NUDGE_SHARDS - 1 (one stream per shard; a notifier reads all of them). The braces make "
    "the stream share a Redis Cluster slot with the shard's timers.",
    "examples": ["{s00}", "{s01}", "{s15}"],
}
Json = dict[str, Any]


def due_address(keys: Keys | None = None) -> str:
    """`nudges:due:{shard}`: the due streams' address with the shard as a parameter."""
    prefix, _, _tag = (keys or Keys()).due(0).rpartition(":")
    return f"{prefix}:{{shard}}"


def document(service: str) -> Json:
    """The finished AsyncAPI document of `service` (scheduler or notifier)."""
    app = importlib.import_module(SERVICES[service]).app
    generated: Json = app.schema.to_specification().to_jsonable()
    return finish(generated)


def finish(generated: Json) -> Json:
    """FastStream's document with the due channel parameterised and correlation ids that
    point at fields the payload really has."""
    doc = copy.deepcopy(generated)
    shard_zero, template = Keys().due(0), due_address()
    for channel in doc.get("channels", {}).values():
        if channel.get("address") == shard_zero:
            channel["address"] = template
            channel["parameters"] = {"shard": dict(SHARD_PARAMETER)}
            redis = channel.get("bindings", {}).get("redis", {})
            if redis.get("channel") == shard_zero:
                redis["channel"] = template
    for message in doc.get("components", {}).get("messages", {}).values():
        field = _correlation_field(doc, message.get("payload", {}))
        if field is None:
            message.pop("correlationId", None)
        else:
            message["correlationId"] = {
                "description": f"The payload's `{field}`.",
                "location": f"$message.payload#/{field}",
            }
    return doc


def _correlation_field(doc: Json, payload: Json) -> str | None:
    variants = _variants(doc, payload)
    for field in CORRELATION_FIELDS:
        if variants and all(field in v.get("required", ()) for v in variants):
            return field
    return None


def _variants(doc: Json, schema: Json, depth: int = 0) -> list[Json]:
    """The object schemas a payload may be: $refs followed, unions (oneOf/anyOf) spread."""
    if depth > 8:
        return []
    if ref := schema.get("$ref"):
        return _variants(doc, resolve(doc, ref), depth + 1)
    for union in ("oneOf", "anyOf"):
        if union in schema:
            return [v for s in schema[union] for v in _variants(doc, s, depth + 1)]
    return [schema] if schema.get("type") == "object" else []


def resolve(doc: Json, ref: str) -> Json:
    """The node a local `$ref` (`#/a/b%20c`, percent-encoded as FastStream writes them) names."""
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise LookupError(f"{ref} is not an object")
    return node
