"""The Kubernetes runtime: install, configure, start, join and check k3s or k0s."""
