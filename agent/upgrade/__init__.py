"""Upgrades: signed bundles, staged versions, the health-gated switch, automatic rollback.

Modules, in the order an upgrade goes through them:

- ``manifest``   the signed manifest's schema and the checks that need no files
- ``signing``    Ed25519 release keys, signatures over the manifest bytes
- ``bundle_tool`` the bundle file (a tar: manifest.json, manifest.sig, payload): keygen, build, sign
- ``download``   fetch a bundle (URL or local path) with progress, off the event loop
- ``verify``     signature, architecture, paths, sizes and sha256, before anything changes
- ``stage``      install a verified bundle into versions/<version> (agent: a venv)
- ``slots``      the versions directory, the switch, commit and rollback (stdlib only)
- ``launcher``   ``agentd-launch``: picks the version and execs it (stdlib only)
- ``gate``       the maintenance window and the update lock
- ``skew``       k3s/k0s version-skew rules (pure)
- ``kube``       k3s/k0s binary upgrade, node-Ready gate, restore; ``airgap`` image tarballs
- ``placement``  copy + fsync + rename of a binary or tarball
- ``health``     is this agent process healthy enough to commit itself
- ``record``     one upgrade's document and states
- ``manager``    one upgrade at a time: the pipeline, progress, records, the status section
- ``settle``     after a restart: finish or decide what the previous process left
- ``controller`` UpgradeController ("upgrade"): runs ``settle``, keeps the section fresh
- ``metrics``    Prometheus lines
"""
