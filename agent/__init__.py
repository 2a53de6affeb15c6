"""edge-agent: turns a bare-metal edge box into a fleet member and a Kubernetes node."""

__version__ = "0.1.0"
