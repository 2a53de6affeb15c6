"""Live answers of a real agentd (enrolled, k3s stand-in running, an upgrade recorded) validate
against the agent's own /openapi.json, checked by an independent validator (jsonschema with
referencing resolving the document's $refs)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .live import live_box


def agentctl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.agentctl", "--root", str(root), *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


DOC = "urn:edge-agent:openapi"


def validator(openapi: dict[str, Any], pointer: str) -> jsonschema.Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        DOC, Resource.from_contents(openapi, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"{DOC}#{pointer}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def response_pointer(path: str) -> str:
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/get/responses/200/content/application~1json/schema"


def open_objects(schema: Any, where: str = "") -> list[str]:
    """Where a schema says ``additionalProperties: true`` (or an object without a closed shape)."""
    found: list[str] = []
    if isinstance(schema, dict):
        if schema.get("additionalProperties") is True:
            found.append(where or "/")
        if schema.get("type") == "object" and "properties" not in schema and "additionalProperties" not in schema:
            found.append(f"{where or '/'} (object with no shape)")
        for k, v in schema.items():
            found += open_objects(v, f"{where}/{k}")
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            found += open_objects(v, f"{where}/{i}")
    return found


def errors(v: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


async def test_live_status_inventory_and_upgrades_match_the_openapi_document(tmp_path: Path) -> None:
    async with live_box(tmp_path) as box:
        openapi = box.get("/openapi.json")
        status = box.get("/v1/status")
        inventory = box.get("/v1/inventory")
        upgrades = box.get("/v1/upgrades")
        one = box.get(f"/v1/upgrades/{box.upgrade_id}")
        ctl_json = json.loads(agentctl(box.root, "status", "-o", "json").stdout)
        ctl_text = agentctl(box.root, "status").stdout
        ctl_inventory = json.loads(agentctl(box.root, "inventory", "-o", "json").stdout)

    # every section is filled, so a section that strays from its model shows here
    assert sorted(status["sections"]) == ["fleet", "health", "inventory", "kubernetes", "network", "upgrade"]
    assert status["sections"]["fleet"]["enrolled"] is True
    assert status["sections"]["kubernetes"]["ready"] is True
    assert status["sections"]["upgrade"]["last"]["id"] == box.upgrade_id
    assert upgrades["items"] and one["state"] == "failed"

    checks = {
        "/v1/status": (response_pointer("/v1/status"), status),
        "/v1/inventory": (response_pointer("/v1/inventory"), inventory),
        "/v1/upgrades": (response_pointer("/v1/upgrades"), upgrades),
        "/v1/upgrades/{id}": (response_pointer("/v1/upgrades/{id}"), one),
    }
    for path, (pointer, doc) in checks.items():
        assert errors(validator(openapi, pointer), doc) == [], path

    # agentctl reads the typed sections as before; -o json is the same versioned document
    assert errors(validator(openapi, "/components/schemas/Status"), ctl_json) == []
    assert ctl_json["schema"] == "edge-agent.status/v1" and sorted(ctl_json["sections"]) == sorted(status["sections"])
    assert errors(validator(openapi, response_pointer("/v1/inventory")), ctl_inventory) == []
    for name, section in status["sections"].items():
        assert f"{name:<10} {section['summary']}" in ctl_text, name

    # the schemas are closed: no section, record or field may be open-ended
    for schema in ("Status", "Condition"):
        assert open_objects(openapi["components"]["schemas"][schema]) == [], schema
    for path in ("/v1/inventory", "/v1/upgrades", "/v1/upgrades/{id}"):
        assert open_objects(openapi["paths"][path]["get"]["responses"]["200"]) == [], path

    # and the validator does fail on what the models do not declare
    strays = copy.deepcopy(status)
    strays["sections"]["fleet"]["surprise"] = 1
    strays["sections"]["kubernetes"]["ready"] = "yes"
    strays["sections"]["elsewhere"] = {}
    found = errors(validator(openapi, response_pointer("/v1/status")), strays)
    assert len(found) == 3, json.dumps(found, indent=1)
    bad_upgrade = {**one, "history": [{**one["history"][0], "note": "x"}]}
    assert errors(validator(openapi, response_pointer("/v1/upgrades/{id}")), bad_upgrade)
