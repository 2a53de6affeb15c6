"""GPUs: PCI display/3D controllers, and SoC GPUs that have no PCI function.

PCI classes 0x0300 (VGA), 0x0302 (3D) and 0x0380 (other display) are GPUs.
A SoC GPU (Tegra, Mali, Adreno, V3D...) is found either as a DRM device with
a render node whose parent is not PCI, or as a platform device whose
device-tree ``compatible`` names a GPU (Tegra's nvgpu has no DRM node).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pyudev

from agent.inventory.enumerate import subsystem_devices
from agent.inventory.pci import numa_node, udev_property
from agent.inventory.records import Gpu, PciDevice
from agent.inventory.sysfs import Fields

GPU_CLASSES = ("0300", "0302", "0380")
VENDORS = {"10de": "NVIDIA", "1002": "AMD", "8086": "Intel", "1a03": "ASPEED", "102b": "Matrox"}
SOC_VENDORS = {"nvidia": "NVIDIA", "arm": "Arm", "qcom": "Qualcomm", "brcm": "Broadcom", "img": "Imagination"}
SOC_NAMES = {
    "nvidia,gk20a": "NVIDIA Tegra K1 GPU (gk20a)",
    "nvidia,gm20b": "NVIDIA Tegra X1 GPU (gm20b)",
    "nvidia,gp10b": "NVIDIA Tegra X2 GPU (gp10b)",
    "nvidia,gv11b": "NVIDIA Xavier GPU (gv11b)",
    "nvidia,ga10b": "NVIDIA Orin GPU (ga10b)",
}
# BMC and emulated display adapters: class 03 devices that are not compute GPUs.
DISPLAY_ONLY_VENDORS = frozenset({"1a03", "102b", "1234", "1af4", "15ad", "1013", "1b36"})
_SOC_GPU = re.compile(
    r"^(nvidia,(gk20a|gm20b|gp10b|gv11b|ga10b)|arm,mali.*|qcom,adreno.*|vivante,gc|"
    r"brcm,.*v3d.*|img,.*gpu.*|img,powervr.*|.*,gpu)$"
)


class _Drm:
    """The DRM card and render node of one device."""

    __slots__ = ("card", "render")

    def __init__(self) -> None:
        self.card: str | None = None
        self.render: str | None = None


def _drm_nodes(udev: pyudev.Context) -> dict[str, _Drm]:
    """DRM card/render node names keyed by the sysfs path of the device they belong to."""
    nodes: dict[str, _Drm] = {}
    for dev in subsystem_devices(udev, "drm"):
        name = dev.sys_name
        if "-" in name or not (name.startswith("card") or name.startswith("renderD")):
            continue  # connectors (card0-HDMI-A-1) and control nodes
        parent = dev.parent
        if parent is None:
            continue
        entry = nodes.setdefault(parent.sys_path, _Drm())
        if name.startswith("card"):
            entry.card = name
        else:
            entry.render = name
    return nodes


def _compatible(dev: pyudev.Device) -> str | None:
    return udev_property(dev, "OF_COMPATIBLE_0")


def _pci_gpu(p: PciDevice, drm: _Drm | None) -> Gpu:
    vendor = VENDORS.get(p.vendor_id or "") or p.vendor_name
    if p.device_name:
        name = f"{vendor} {p.device_name}" if vendor and not p.device_name.startswith(vendor) else p.device_name
    else:
        name = f"{vendor or p.vendor_id or 'unknown vendor'} device {p.device_id or 'unknown'}"
    return Gpu(
        kind="pci",
        name=name,
        vendor_id=p.vendor_id,
        device_id=p.device_id,
        vendor_name=vendor,
        device_name=p.device_name,
        driver=p.driver,
        pci=p,
        numa_node=p.numa_node,
        display_only=(p.vendor_id in DISPLAY_ONLY_VENDORS),
        drm_card=drm.card if drm else None,
        drm_render=drm.render if drm else None,
        platform_path=None,
        compatible=None,
        nvidia=None,
        problems={},
    )


def _platform_gpu(dev: pyudev.Device, drm: _Drm | None) -> Gpu:
    f = Fields(dev.sys_path)
    compatible = _compatible(dev)
    driver = f.link("driver")
    vendor = SOC_VENDORS.get(compatible.split(",", 1)[0]) if compatible and "," in compatible else None
    if compatible and compatible in SOC_NAMES:
        name = SOC_NAMES[compatible]
    elif compatible:
        name = f"{vendor} {compatible.split(',', 1)[1]}" if vendor else compatible
    else:
        name = f"{driver or 'unknown'} GPU at {dev.sys_name}"
    return Gpu(
        kind="platform",
        name=name,
        vendor_id=None,
        device_id=None,
        vendor_name=vendor,
        device_name=None,
        driver=driver,
        platform_path=dev.sys_path,
        compatible=compatible,
        numa_node=numa_node(f),
        display_only=False,
        drm_card=drm.card if drm else None,
        drm_render=drm.render if drm else None,
        pci=None,
        nvidia=None,
        problems=f.problems,
    )


def collect_gpus(
    udev: pyudev.Context, pci: Mapping[str, PciDevice], pci_devices: Sequence[pyudev.Device]
) -> tuple[Gpu, ...]:
    drm = _drm_nodes(udev)
    gpus: list[Gpu] = []
    pci_paths: set[str] = set()
    for dev in pci_devices:
        p = pci.get(dev.sys_name)
        if p is not None and p.class_code is not None and p.class_code[:4] in GPU_CLASSES:
            gpus.append(_pci_gpu(p, drm.get(dev.sys_path)))
        pci_paths.add(dev.sys_path)
    gpus.sort(key=lambda g: g.pci.address if g.pci else "")
    platform: dict[str, pyudev.Device] = {}
    for path, nodes in drm.items():
        if path in pci_paths or nodes.render is None:
            continue
        try:
            platform[path] = pyudev.Devices.from_sys_path(udev, path)
        except (OSError, pyudev.DeviceNotFoundError):
            continue
    for dev in subsystem_devices(udev, "platform"):
        compatible = _compatible(dev)
        if compatible and _SOC_GPU.match(compatible):
            platform.setdefault(dev.sys_path, dev)
    gpus.extend(_platform_gpu(dev, drm.get(path)) for path, dev in sorted(platform.items()))
    return tuple(gpus)
