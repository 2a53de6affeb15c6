"""The subprocess seam with real processes: exit codes, timeouts, programs that cannot run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.errors import CommandFailed, CommandNotFound, CommandNotRunnable, CommandTimeout
from agent.sysexec import DEFAULT_PATH, ProcessRunner


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


async def test_failure_carries_argv_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    script(tmp_path / "tool", "#!/bin/sh\necho noise >&2\necho 'level=fatal msg=\"Error: bad\"' >&2\nexit 3\n")
    runner = ProcessRunner(path=str(tmp_path))
    with pytest.raises(CommandFailed) as e:
        await runner.run(["tool", "--x"], timeout=5)
    assert e.value.argv == ("tool", "--x") and e.value.returncode == 3
    assert "Error: bad" in str(e.value) and "noise" in e.value.stderr_tail


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    script(tmp_path / "hang", f"#!/bin/sh\n(sleep 2; touch {marker}) &\nsleep 30\n")
    runner = ProcessRunner(path=f"{tmp_path}:{DEFAULT_PATH}")
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        await runner.run(["hang"], timeout=0.3)
    assert time.monotonic() - t0 < 2
    time.sleep(2.2)
    assert not marker.exists()  # the grandchild died with the group


async def test_missing_and_unrunnable_programs(tmp_path: Path) -> None:
    runner = ProcessRunner(path=str(tmp_path))
    with pytest.raises(CommandNotFound):
        await runner.run(["nope"], timeout=5)
    (tmp_path / "truncated").write_bytes(b"\x7fELF\x02\x01\x01\x00")  # an ELF header and nothing else
    (tmp_path / "truncated").chmod(0o755)
    with pytest.raises(CommandNotRunnable) as e:
        await runner.run(["truncated"], timeout=5)
    assert "cannot run" in str(e.value)
