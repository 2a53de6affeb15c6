"""``edge-registrar policy ...`` and ``class ...``: approval policies and machine classes.

    edge-registrar policy add NAME [--serial S ...] [--site X] [--label k=v ...] [--require 'gpu.count>=1' ...]
    edge-registrar policy list|remove NAME [-o json]
    edge-registrar class add NAME --require 'gpu.model~H100' ... --cluster gpu-lab --role agent [--priority N]
    edge-registrar class list|remove NAME [-o json]

A bad requirement is refused (exit 2) naming it and what was expected; nothing is stored then.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from agent.errors import BadRequirement
from agent.registrar.classes import class_from_json, make_class
from agent.registrar.database import from_args
from agent.registrar.policy import make_policy, policy_from_json
from agent.registrar.views import table


def label(text: str) -> tuple[str, str]:
    """``--label k=v`` (token create, policy add)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    return key, value


def _add(args: argparse.Namespace, kind: str, build: Callable[[], Any]) -> int:
    try:
        rule = build()
    except BadRequirement as exc:
        print(f"edge-registrar: {kind} add: {exc}", file=sys.stderr)
        return 2
    db = from_args(args)
    try:
        if not db.put_rule(kind, rule.name, json.dumps(rule.to_json())):
            print(f"edge-registrar: {kind} {rule.name} exists; remove it first", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(f"added {kind} {rule.name}")
    return 0


def _remove(args: argparse.Namespace, kind: str) -> int:
    db = from_args(args)
    try:
        if not db.remove_rule(kind, args.name):
            print(f"edge-registrar: no {kind} {args.name!r}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(f"removed {kind} {args.name}")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_cmd == "add":
        return _add(args, "policy", lambda: make_policy(args.name, serials=args.serial, site=args.site,
                                                         labels=dict(args.label), requires=args.require))  # fmt: skip
    if args.policy_cmd == "remove":
        return _remove(args, "policy")
    db = from_args(args)
    policies = [policy_from_json(p) for p in db.rules("policy")]
    db.close()
    if args.output == "json":
        print(json.dumps({"schema": "edge-registrar.policies/v1", "policies": [p.to_json() for p in policies]},
                         indent=1))  # fmt: skip
    else:
        print(table(["POLICY", "APPROVES WHEN"], [[p.name, p.describe()] for p in policies]))
    return 0


def cmd_class(args: argparse.Namespace) -> int:
    if args.class_cmd == "add":
        return _add(args, "class", lambda: make_class(args.name, requires=args.require, cluster=args.cluster,
                                                       role=args.role, priority=args.priority))  # fmt: skip
    if args.class_cmd == "remove":
        return _remove(args, "class")
    db = from_args(args)
    classes = sorted((class_from_json(c) for c in db.rules("class")), key=lambda c: (-c.priority, c.name))
    db.close()
    if args.output == "json":
        print(json.dumps({"schema": "edge-registrar.classes/v1", "classes": [c.to_json() for c in classes]},
                         indent=1))  # fmt: skip
    else:
        rows = [[c.name, str(c.priority), c.cluster, c.role, " and ".join(r.text for r in c.requires)] for c in classes]
        print(table(["CLASS", "PRIORITY", "CLUSTER", "ROLE", "MATCHES WHEN"], rows))
    return 0


def add_commands(sub: Any) -> None:
    pol = sub.add_parser("policy", help="auto-approval policies").add_subparsers(dest="policy_cmd", required=True)
    s = pol.add_parser("add", help="approve pending boxes that match, as policy:NAME")
    s.add_argument("name")
    s.add_argument("--serial", action="append", default=[], help="DMI serial allowed (repeatable)")
    s.add_argument("--site", default="")
    s.add_argument("--label", type=label, action="append", default=[], help="k=v the box must carry")
    s.add_argument("--require", action="append", default=[], help="FACT OP VALUE, e.g. 'gpu.count>=1'")
    s.set_defaults(func=cmd_policy)
    cls = sub.add_parser("class", help="machine classes").add_subparsers(dest="class_cmd", required=True)
    s = cls.add_parser("add", help="place matching boxes into a cluster and role")
    s.add_argument("name")
    s.add_argument("--require", action="append", default=[], help="FACT OP VALUE, e.g. 'gpu.model~H100'")
    s.add_argument("--cluster", required=True)
    s.add_argument("--role", choices=["server", "agent"], required=True)
    s.add_argument("--priority", type=int, default=0, help="the highest matching class wins")
    s.set_defaults(func=cmd_class)
    for group, func in ((pol, cmd_policy), (cls, cmd_class)):
        add_list_remove(group, func, "name")


def add_list_remove(group: Any, func: Callable[[argparse.Namespace], int], key: str) -> None:
    """``list [-o table|json]`` and ``remove KEY``, the two commands every kind of rule has."""
    s = group.add_parser("list")
    s.add_argument("-o", "--output", choices=["table", "json"], default="table")
    s.set_defaults(func=func)
    s = group.add_parser("remove")
    s.add_argument(key)
    s.set_defaults(func=func)
