#!/usr/bin/python3
"""TEST IMAGES ONLY: the command channel tests/vm uses to run commands inside a booted VM.

Reads one JSON request per line from the virtio-serial port QEMU gives the VM
(``-device virtserialport,name=edge.test``): {"id": N, "argv": [...], "timeout": S}; runs it
and answers one line {"id": N, "rc": RC, "stdout": "...", "stderr": "..."}. Never in a
production image (image/check_tree.py refuses /usr/lib/edge-test there).
"""

import json
import os
import subprocess
import sys


def run(req: dict) -> dict:
    try:
        proc = subprocess.run(
            req["argv"], capture_output=True, text=True, errors="replace", timeout=float(req.get("timeout", 60))
        )
        return {"id": req.get("id"), "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    except subprocess.TimeoutExpired as exc:
        return {"id": req.get("id"), "rc": 124, "stdout": "", "stderr": f"timed out: {exc}"}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        return {"id": req.get("id"), "rc": 127, "stdout": "", "stderr": f"cannot run: {exc}"}


def main() -> int:
    port = sys.argv[1]
    fd = os.open(port, os.O_RDWR)
    with os.fdopen(fd, "r+b", buffering=0) as chan:
        buf = b""
        while True:
            chunk = chan.read(65536)
            if not chunk:  # host side not connected: wait for it
                import time

                time.sleep(0.2)
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    req = json.loads(line)
                except ValueError as exc:
                    req = {"id": None, "argv": None, "error": str(exc)}
                answer = json.dumps(run(req)).encode() + b"\n"
                while answer:  # a virtio port takes a large write in parts
                    answer = answer[chan.write(answer) :]


if __name__ == "__main__":
    sys.exit(main())
