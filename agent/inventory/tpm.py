"""Trusted Platform Modules: what ``/sys/class/tpm`` says (the kernel's TPM character devices).

A TPM is not a PCI function (TIS/CRB sit on ACPI or SPI), so it would be missing from every
other section. Recorded per ``tpmN``: the TPM major version the kernel found (``2`` for TPM 2.0,
``tpm_version_major``, kernel 5.5+), the driver bound to it, and whether the kernel's resource
manager (``/dev/tpmrmN``) is there. The TPM-bound identity builds on this record.
"""

from __future__ import annotations

import os

import pyudev

from agent.inventory.records import Tpm
from agent.inventory.sysfs import Fields, listdir


def tpm_record(sys_root: str, name: str) -> Tpm:
    fields = Fields(os.path.join(sys_root, "class", "tpm", name))
    major = fields.integer("tpm_version_major", "version_major")
    return Tpm(
        name=name,
        version_major=major,
        driver=fields.link("device/driver"),
        resource_manager=os.path.isdir(os.path.join(sys_root, "class", "tpmrm", "tpmrm" + name.removeprefix("tpm"))),
        problems=fields.problems,
    )


def collect_tpms(udev: pyudev.Context) -> tuple[Tpm, ...]:
    sys_root = udev.sys_path
    names = [n for n in listdir(os.path.join(sys_root, "class", "tpm")) if n.startswith("tpm")]
    return tuple(tpm_record(sys_root, n) for n in names)
