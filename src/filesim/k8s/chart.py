"""The generated files of the Helm chart: `values.schema.json` and `templates/_topology.tpl`.

Both restate the topology model, so both are written from it (`filesim.topology.schema`):
`filesim k8s schema --write deploy/helm/filesim` after a change to the model, and
`filesim k8s schema --check deploy/helm/filesim` (a test runs the same comparison) to see
that the committed chart is up to date. The chart's own settings (image, hostPath, service,
persistence, ...) are described here, in `chart_schema`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from filesim.k8s.errors import K8sError
from filesim.k8s.render import QUANTITY
from filesim.topology.mount import MOUNT_OPTIONS
from filesim.topology.schema import (
    JsonSchema,
    model_defaults,
    profile_defaults,
    server_schema,
)

SCHEMA_FILE = "values.schema.json"
TOPOLOGY_TEMPLATE = "templates/_topology.tpl"
GENERATE = "filesim k8s schema --write deploy/helm/filesim"


def chart_schema() -> JsonSchema:
    """The chart's values.schema.json."""
    server, definitions = server_schema()
    server["properties"]["folder"] = {
        "description": "The server's folder relative to hostPath.root (default: its name).",
        "type": "string",
        "minLength": 1,
        "pattern": "^[^/]",
    }
    server["properties"]["resources"] = {"$ref": "#/definitions/resources"}
    server["properties"]["service"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"$ref": "#/definitions/serviceType"},
            "clusterIP": {
                "description": "A fixed ClusterIP for the server's Service (an unused address "
                "of the cluster's service range, e.g. 10.96.100.11): the stable NAS address "
                "production-style PVs name (`filesim k8s render --service-ip NAME=IP`).",
                "type": "string",
                "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$|^[0-9a-fA-F:]+$",
            },
        },
    }
    profiles = list(profile_defaults())
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "filesim chart values",
        "description": f"Generated from filesim's topology model by `{GENERATE}`.",
        "type": "object",
        "required": ["profile", "image", "hostPath", "nfsPort", "service", "servers"],
        "properties": {
            "global": {"type": "object"},
            "profile": {
                "description": "Sync defaults per role: default or seed (the original system).",
                "enum": profiles,
            },
            "image": _object(
                {
                    "repository": {"type": "string", "minLength": 1},
                    "tag": {"type": "string"},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
                required=["repository"],
            ),
            "imagePullSecrets": {"type": "array", "items": {"type": "object"}},
            "hostPath": _object(
                {
                    "root": {
                        "description": "An absolute directory on the node holding every "
                        "server's folder.",
                        "type": "string",
                        "pattern": "^/",
                    },
                    "type": {"enum": ["", "DirectoryOrCreate", "Directory"]},
                },
                required=["root"],
            ),
            "nfsPort": {"$ref": "#/definitions/port"},
            "service": _object(
                {
                    "type": {"$ref": "#/definitions/serviceType"},
                    "nodePortBase": {
                        "description": "First NodePort; the servers take consecutive ports "
                        "from here.",
                        "type": "integer",
                        "minimum": 30000,
                        "maximum": 32767,
                    },
                }
            ),
            "persistence": _object(
                {
                    "enabled": {"type": "boolean"},
                    "storageClass": {"type": ["string", "null"]},
                    "accessModes": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "enum": [
                                "ReadWriteOnce",
                                "ReadWriteOncePod",
                                "ReadWriteMany",
                                "ReadOnlyMany",
                            ]
                        },
                    },
                    "size": {"type": "string", "pattern": QUANTITY.pattern},
                    "keepOnUninstall": {"type": "boolean"},
                }
            ),
            "resources": {"$ref": "#/definitions/resources"},
            "syncResources": {"$ref": "#/definitions/resources"},
            "podSecurityContext": {"type": "object"},
            "securityContext": {"type": "object"},
            "readinessProbe": _object(
                {
                    "initialDelaySeconds": {"type": "integer", "minimum": 0},
                    "periodSeconds": {"type": "integer", "minimum": 1},
                    "timeoutSeconds": {"type": "integer", "minimum": 1},
                    "failureThreshold": {"type": "integer", "minimum": 1},
                    "successThreshold": {"type": "integer", "minimum": 1},
                }
            ),
            "nodeSelector": {"type": "object"},
            "tolerations": {"type": "array"},
            "affinity": {"type": "object"},
            "podAnnotations": {"type": "object"},
            "servers": {
                "description": "The NAS servers: one Deployment and Service each while enabled.",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/definitions/server"},
            },
        },
        "definitions": {
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
            "resources": _object(
                {
                    "requests": {"type": "object"},
                    "limits": {"type": "object"},
                    "claims": {"type": "array"},
                }
            ),
            "server": server,
            **definitions,
        },
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> JsonSchema:
    schema: JsonSchema = {"type": "object", "additionalProperties": False}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def topology_template() -> str:
    """templates/_topology.tpl: the model's defaults and the mount options, as Helm defines."""
    mount = ",".join(MOUNT_OPTIONS).replace("{port}", "{{ . }}")
    return (
        "{{/*\n"
        "Generated from filesim's topology model; do not edit. After a change to the model:\n"
        f"  {GENERATE}\n"
        "The chart resolves each server as filesim does: these model defaults, then its\n"
        "profile's sync defaults for its role, then what the values set.\n"
        "*/}}\n"
        '{{- define "filesim.modelDefaults" -}}\n'
        f"{_yaml(model_defaults(), flow=False)}"
        "{{- end -}}\n\n"
        '{{- define "filesim.profileDefaults" -}}\n'
        f"{_yaml(profile_defaults())}"
        "{{- end -}}\n\n"
        "{{/* Linux mount options for a server; the argument is its port. */}}\n"
        '{{- define "filesim.mountOptions" -}}\n'
        f"{mount}\n"
        "{{- end -}}\n"
    )


def _yaml(data: Any, flow: bool | None = None) -> str:
    """YAML, innermost mappings on one line unless `flow` is False."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=flow, width=100)


def chart_files() -> dict[str, str]:
    """Path in the chart -> content, for every generated file."""
    return {
        SCHEMA_FILE: json.dumps(chart_schema(), indent=2) + "\n",
        TOPOLOGY_TEMPLATE: topology_template(),
    }


def stale_files(chart: Path) -> list[str]:
    """The generated files of the chart at `chart` that differ from what would be written."""
    stale = []
    for name, text in chart_files().items():
        try:
            current = (chart / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(name)
    return stale


def write_files(chart: Path) -> list[Path]:
    """Write the generated files into the chart at `chart`; the paths written."""
    if not (chart / "Chart.yaml").is_file():
        raise K8sError(f"{chart} is not a Helm chart (no Chart.yaml there)")
    written = []
    for name, text in chart_files().items():
        path = chart / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
