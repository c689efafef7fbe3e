"""A JSON Schema of the parts of KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1)
that deploy/ uses, for checking the manifests offline.

KEDA's CRDs are not in the Kubernetes schemas kubernetes-validate ships. This schema is
stricter than KEDA's own: only the fields used here are allowed, and each trigger's metadata
keys are those KEDA's Redis Streams scalers document (redis-streams, redis-cluster-streams:
keda.sh/docs/2.16/scalers/), so a misspelt key fails instead of being ignored by KEDA.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["KEDA_SCHEMAS", "REDIS_STREAMS_METADATA"]

_NUMBER: Final = {"type": "string", "pattern": "^[0-9]+$"}  # KEDA metadata values are strings
_META: Final = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
    "additionalProperties": False,
}
REDIS_STREAMS_METADATA: Final[dict[str, dict[str, Any]]] = {
    "redis-streams": {
        "address": {"type": "string", "pattern": "^[^\\s:]+:[0-9]+$"},
        "host": {"type": "string"},
        "port": _NUMBER,
        "addressFromEnv": {"type": "string"},
        "usernameFromEnv": {"type": "string"},
        "passwordFromEnv": {"type": "string"},
        "databaseIndex": _NUMBER,
    },
    "redis-cluster-streams": {
        "addresses": {"type": "string", "pattern": "^[^\\s:]+:[0-9]+(, ?[^\\s:]+:[0-9]+)*$"},
        "hosts": {"type": "string"},
        "ports": {"type": "string"},
        "addressesFromEnv": {"type": "string"},
        "usernameFromEnv": {"type": "string"},
        "passwordFromEnv": {"type": "string"},
    },
}
_COMMON_STREAM_METADATA: Final = {
    "stream": {"type": "string", "minLength": 1},
    "consumerGroup": {"type": "string", "minLength": 1},
    "pendingEntriesCount": _NUMBER,
    "streamLength": _NUMBER,
    "lagCount": _NUMBER,
    "activationLagCount": _NUMBER,
    "enableTLS": {"enum": ["true", "false"]},
    "unsafeSsl": {"enum": ["true", "false"]},
}


def _trigger(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "metadata"],
        "properties": {
            "type": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["stream"],
                "properties": {**REDIS_STREAMS_METADATA[kind], **_COMMON_STREAM_METADATA},
                "additionalProperties": False,
                # lagCount needs activationLagCount (KEDA's docs); consumerGroup with it.
                "dependentRequired": {"lagCount": ["activationLagCount", "consumerGroup"]},
            },
            "authenticationRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }


KEDA_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": [_trigger(k) for k in REDIS_STREAMS_METADATA]},
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["secretTargetRef"],
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "properties": {
                                # the Redis scalers' authentication parameters
                                "parameter": {
                                    "enum": ["username", "password", "tls", "ca", "cert", "key"]
                                },
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                            "additionalProperties": False,
                        },
                    }
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
}
