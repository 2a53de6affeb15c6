"""Per-site network overrides: the fleet's say over a box's ``[network]`` policy (issue 12).

A site's override (``agent.model.network.NetworkOverride``: ``selectors``, ``family``,
``external_selectors``, ``extra_sans``) is stored as a rule of kind ``site-network`` named by the
site, in the same rules table as approval policies and machine classes (so every backend and
every replica has it), and handed to each box of that site inside its assignment. The box's
planner applies it over its own ``[network]``; a field the override leaves out stays the box's.

    edge-registrar --state-dir DIR site-network set SITE --file override.toml
    edge-registrar --state-dir DIR site-network list [-o json] | remove SITE
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.model.network import NetworkOverride
from agent.registrar.database import from_args
from agent.registrar.rules_cli import add_list_remove
from agent.registrar.views import table

KIND = "site-network"


def site_override(spec: str | None) -> dict[str, Any] | None:
    """A site's stored override (the rule of kind KIND named by the site) as the assignment carries it,
    or None when there is none."""
    if spec is None:
        return None
    doc = json.loads(spec)
    return NetworkOverride.model_validate(doc["override"]).model_dump(mode="json", exclude_none=True)


def read_override(path: Path) -> NetworkOverride:
    """A TOML file shaped like ``[network]``; ValueError naming the file and the key on bad input."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML: {exc}") from exc
    body = doc.get("network", doc)  # the file may hold the keys at top level or under [network]
    try:
        return NetworkOverride.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: network.{key}: {first['msg']}") from exc


def cmd_site_network(args: argparse.Namespace) -> int:
    db = from_args(args)
    try:
        if args.site_cmd == "set":
            try:
                override = read_override(args.file)
            except ValueError as exc:
                print(f"edge-registrar: site-network set: {exc}", file=sys.stderr)
                return 2
            spec = json.dumps({"site": args.site, "override": override.model_dump(mode="json", exclude_none=True)})
            db.remove_rule(KIND, args.site)
            db.put_rule(KIND, args.site, spec)
            print(f"site {args.site}: network override set; its boxes get it with their next heartbeat")
            return 0
        if args.site_cmd == "remove":
            if not db.remove_rule(KIND, args.site):
                print(f"edge-registrar: no network override for site {args.site!r}", file=sys.stderr)
                return 1
            print(f"site {args.site}: network override removed")
            return 0
        docs = [json.loads(s) for s in db.rules(KIND)]
    finally:
        db.close()
    if args.output == "json":
        print(json.dumps({"schema": "edge-registrar.site-networks/v1", "sites": docs}, indent=1))
    else:
        print(table(["SITE", "OVERRIDE"], [[d["site"], json.dumps(d["override"], sort_keys=True)] for d in docs]))
    return 0


def add_commands(sub: Any) -> None:
    grp = sub.add_parser("site-network", help="per-site overrides of the boxes' [network] policy")
    cmds = grp.add_subparsers(dest="site_cmd", required=True)
    s = cmds.add_parser("set", help="store a site's override (a TOML file shaped like [network])")
    s.add_argument("site")
    s.add_argument("--file", type=Path, required=True)
    s.set_defaults(func=cmd_site_network)
    add_list_remove(cmds, cmd_site_network, "site")
