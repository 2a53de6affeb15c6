"""Hardware health: NVMe SMART/health logs, GPU health, NIC links -> conditions, metrics, status.

collectors (nvme, gpu, nic) read; ``evaluate`` turns readings and thresholds into problems
and conditions (pure); ``metrics`` writes Prometheus lines; ``controller`` polls on an interval.
"""
