"""Hardware inventory: udev/sysfs collectors, nvidia-smi enrichment, hotplug, node labels."""
