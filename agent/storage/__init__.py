"""Local NVMe prepared for CSI: selection (pure), the blank probe, the preparing reconciler, status."""
