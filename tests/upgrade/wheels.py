"""A real (tiny) wheel that installs an ``agentd`` command, for staging tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def agent_wheel(directory: Path, version: str, script: str | None = None) -> Path:
    """``agentd`` prints its version, or runs ``script`` (Python source) when given."""
    dist = f"edge_agent-{version}.dist-info"
    body = (
        f"    exec(compile({script!r}, 'agentd', 'exec'), {{'__name__': '__main__'}})\n"
        if script
        else ("    print('agentd', VERSION)\n")
    )
    files = {
        "fakeagent/__init__.py": f"VERSION = {version!r}\n\ndef main():\n{body}".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: edge-agent\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": b"[console_scripts]\nagentd = fakeagent:main\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = directory / f"edge_agent-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out
