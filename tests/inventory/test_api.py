"""GET /v1/inventory, its OpenAPI entry, the /metrics lines and the agentctl view."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agent.api import inventory as inventory_api
from agent.api.app import ApiInfo, build_app, openapi_document
from agent.api.http import CTX
from agent.cli.inventory_view import render_inventory
from agent.context import AgentContext
from agent.inventory.controller import summarize
from agent.inventory.metrics import metrics
from agent.model.config import AgentConfig
from agent.model.inventory import Gpu, Inventory, Nic, NvidiaDetails, NvmeController, NvmeNamespace, PciDevice
from agent.paths import Paths
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def sample() -> Inventory:
    h100 = PciDevice(address="0000:18:00.0", class_code="030200", vendor_id="10de", device_id="2330", numa_node=0)
    return Inventory(
        scanned_at=NOW,
        pci=(h100,),
        gpus=(
            Gpu(
                kind="pci",
                name="NVIDIA H100 80GB HBM3",
                vendor_id="10de",
                device_id="2330",
                driver="nvidia",
                pci=h100,
                numa_node=0,
                nvidia=NvidiaDetails(memory_mib=81559, uuid="GPU-1"),
            ),
        ),
        nvme=(
            NvmeController(
                name="nvme0",
                model="SAMSUNG MZQL23T8HCLS-00A07",
                transport="pcie",
                namespaces=(NvmeNamespace(name="nvme0n1", size_bytes=3840755982336, remote=False, holds_root=True),),
            ),
        ),
        nics=(
            Nic(name="ens1f0np0", kind="physical", physical=True, driver="mlx5_core", speed_mbps=100000, mtu=9000),
            Nic(name="cni0", kind="bridge", physical=False, problems={"mtu": "mtu: permission denied"}),
        ),
    )


def make_ctx(tmp_path: Path) -> AgentContext:
    paths = Paths(tmp_path)
    return AgentContext(paths, ProcessRunner(), StatusBoard(), StateStore(paths.state_file), Watch(AgentConfig()))


def make_app(ctx: AgentContext) -> web.Application:
    return build_app(ctx, ApiInfo(), [inventory_api], metric_sources=[lambda: metrics(ctx)])


async def test_not_ready_until_the_first_scan(tmp_path: Path, aiohttp_client: Any) -> None:
    client: TestClient = await aiohttp_client(make_app(make_ctx(tmp_path)))
    r = await client.get("/v1/inventory")
    assert r.status == 503 and r.content_type == "application/problem+json"
    assert r.headers["Retry-After"] == "1"
    assert (await r.json())["title"] == "Inventory not ready"


async def test_inventory_with_labels_and_etag(tmp_path: Path, aiohttp_client: Any) -> None:
    ctx = make_ctx(tmp_path)
    app = make_app(ctx)
    client: TestClient = await aiohttp_client(app)
    app[CTX].inventory.set(sample())
    r = await client.get("/v1/inventory")
    assert r.status == 200
    doc = await r.json()
    assert doc["schema"] == "edge-agent.inventory/v1"
    assert doc["inventory"]["gpus"][0]["nvidia"]["memory_mib"] == 81559
    assert doc["labels"]["feature.node.kubernetes.io/pci-10de.present"] == "true"
    assert doc["labels"]["edge-agent.io/gpu.count"] == "1"
    etag = r.headers["ETag"]
    r = await client.get("/v1/inventory", headers={"If-None-Match": etag})
    assert r.status == 304
    ctx.inventory.set(sample().model_copy(update={"gpus": ()}))
    r = await client.get("/v1/inventory", headers={"If-None-Match": etag})
    assert r.status == 200 and r.headers["ETag"] != etag
    assert (await r.json())["labels"]["edge-agent.io/gpu.count"] == "0"


def test_openapi_entry_matches_the_route(tmp_path: Path) -> None:
    app = make_app(make_ctx(tmp_path))
    doc = json.loads(openapi_document(app))
    mine = {(m, p) for p, item in inventory_api.OPENAPI_PATHS.items() for m in item}
    routes = {
        (r.method.lower(), r.resource.canonical)  # type: ignore[union-attr]
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None and r.resource.canonical == "/v1/inventory"
    }
    assert mine == routes == {("get", "/v1/inventory")}
    schema = doc["paths"]["/v1/inventory"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "$defs" not in json.dumps(schema)  # self-contained: no dangling pydantic refs
    assert set(schema["properties"]["inventory"]["properties"]) >= {"system", "nvme", "gpus", "nics", "disks"}


async def test_metrics_lines(tmp_path: Path, aiohttp_client: Any) -> None:
    ctx = make_ctx(tmp_path)
    client: TestClient = await aiohttp_client(make_app(ctx))
    ctx.inventory.set(sample())
    ctx.board.set_section(summarize(sample(), scans=3, hotplug_events=7, last_scan_seconds=0.004, hotplug="udev"))
    text = await (await client.get("/metrics")).text()
    assert 'edge_agent_inventory_devices{kind="gpu"} 1' in text
    assert 'edge_agent_inventory_devices{kind="nic_physical"} 1' in text
    assert 'edge_agent_nic_link_speed_mbps{nic="ens1f0np0"} 100000' in text
    assert 'edge_agent_nvme_capacity_bytes{location="local"} 3840755982336' in text
    assert "edge_agent_inventory_hotplug_events_total 7" in text
    assert "edge_agent_inventory_scans_total 3" in text
    assert "# TYPE edge_agent_inventory_hotplug_events_total counter" in text
    assert 'name="NVIDIA H100 80GB HBM3"' in text


def test_view_renders_tables_and_problems() -> None:
    doc = inventory_api.inventory_document(sample())
    text = render_inventory(json.loads(json.dumps(doc)))
    assert "GPUs (1)" in text and "NVIDIA H100 80GB HBM3" in text and "80 GiB" in text
    assert "nvme0n1" in text and "3.84 TB" in text and "root" in text
    assert "ens1f0np0" in text and "100 Gb/s" in text
    assert "edge-agent.io/gpu.count=1" in text
    assert "nics[cni0].mtu: mtu: permission denied" in text
    assert "\033[" not in text
    assert "\033[1mGPUs (1)\033[0m" in render_inventory(doc, color=True)


@pytest.mark.parametrize("module", ["agent.cli.inventory_view"])
def test_view_imports_only_the_standard_library(module: str) -> None:
    code = (
        f"import sys; import {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'aiohttp', 'pyudev', 'psutil')];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_agentctl_inventory_through_a_unix_socket(tmp_path: Path) -> None:
    """agentctl (a separate process) renders what the route serves: table and -o json."""
    ctx = make_ctx(tmp_path)
    ctx.inventory.set(sample())
    runner = web.AppRunner(make_app(ctx))
    await runner.setup()
    sock = tmp_path / "agent.sock"
    await web.UnixSite(runner, str(sock)).start()
    try:
        outputs = []
        for extra in ([], ["-o", "json"]):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agent.cli.agentctl",
                "--socket",
                str(sock),
                "inventory",
                *extra,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            outputs.append(out.decode())
    finally:
        await runner.cleanup()
    table, raw = outputs
    assert "NVIDIA H100 80GB HBM3" in table and "edge-agent.io/gpu.count=1" in table
    doc = json.loads(raw)
    assert doc["schema"] == "edge-agent.inventory/v1"
    assert doc["inventory"]["nvme"][0]["namespaces"][0]["holds_root"] is True
