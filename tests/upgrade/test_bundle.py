"""Bundles: build, sign, verify; every malformed bundle is refused and leaves nothing behind."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import BundleError
from agent.upgrade import bundle_tool
from agent.upgrade.manifest import host_architecture
from agent.upgrade.signing import ReleaseKey, load_release_keys
from agent.upgrade.verify import verify_bundle
from tests.upgrade.craft import entry, manifest_doc, signed_bundle, write_tar

ARCH = host_architecture()


def _verify(bundle: Path, keys: list[ReleaseKey], scratch: Path, arch: str = ARCH) -> None:
    verify_bundle(bundle, keys, scratch, architecture=arch)


def test_build_sign_verify_roundtrip(
    tmp_path: Path, payload: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey]
) -> None:
    unsigned = tmp_path / "k3s.tar"
    bundle_tool.build(
        unsigned,
        name="k3s",
        kind="k3s",
        version="v1.33.2+k3s1",
        files=[str(payload / "k3s"), f"{payload / 'notes.txt'}=doc/notes.txt"],
    )
    with pytest.raises(BundleError, match=r"expected manifest\.json and manifest\.sig first"):
        _verify(unsigned, release_keys, tmp_path / "s0")

    manifest = bundle_tool.sign_bundle(unsigned, release_key)
    verified = verify_bundle(unsigned, release_keys, tmp_path / "s1", architecture=ARCH)
    assert verified.manifest == manifest
    assert (verified.directory / "k3s").read_bytes() == (payload / "k3s").read_bytes()
    assert (verified.directory / "k3s").stat().st_mode & 0o777 == 0o755
    assert (verified.directory / "doc/notes.txt").read_text() == "release notes\n"


def test_gzip_bundles_verify_too(
    tmp_path: Path, payload: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey]
) -> None:
    out = tmp_path / "b.tar.gz"
    bundle_tool.build(out, name="n", kind="k0s", version="v1.33.1+k0s.0", files=[str(payload / "k3s")], key=release_key)
    assert verify_bundle(out, release_keys, tmp_path / "s", architecture=ARCH).manifest.kind == "k0s"


def test_keygen_writes_private_key_0600_and_returns_a_usable_public_key(tmp_path: Path) -> None:
    pub = bundle_tool.keygen(tmp_path / "release.key")
    assert (tmp_path / "release.key").stat().st_mode & 0o777 == 0o600
    assert load_release_keys([pub])[0].key_id == pub[:8]
    with pytest.raises(BundleError, match="refusing to overwrite"):
        bundle_tool.keygen(tmp_path / "release.key")


GOOD = b"binary-bytes" * 100


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-signature", "bad signature"),
        ("tampered-manifest", "bad signature"),
        ("wrong-hash", "sha256 .* differs"),
        ("wrong-size", "size .* differs"),
        ("dotdot-in-manifest", "leaves the bundle"),
        ("absolute-in-manifest", "is absolute"),
        ("dotdot-member", "leaves the bundle"),
        ("symlink-member", "not a regular file"),
        ("unlisted-member", "not listed in the manifest"),
        ("missing-file", "listed file\\(s\\) missing"),
        ("wrong-architecture", "built for architecture"),
        ("no-keys", "no release keys configured"),
    ],
)
def test_bad_bundles_are_refused_and_leave_nothing(
    tmp_path: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey], case: str, message: str
) -> None:
    out = tmp_path / "bad.tar"
    keys = release_keys
    files = [entry("bin/k3s", GOOD)]
    payload = [("bin/k3s", GOOD)]
    if case == "bad-signature":
        signed_bundle(out, Ed25519PrivateKey.generate(), manifest_doc(files), payload)
    elif case == "tampered-manifest":
        import json

        from agent.upgrade.signing import sign

        raw = json.dumps(manifest_doc(files)).encode()
        evil = raw.replace(b"v1.33.2", b"v1.99.2")
        write_tar(out, [("manifest.json", evil), ("manifest.sig", sign(release_key, raw)), *payload])
    elif case == "wrong-hash":
        signed_bundle(out, release_key, manifest_doc(files), [("bin/k3s", GOOD[:-1] + b"X")])
    elif case == "wrong-size":
        signed_bundle(out, release_key, manifest_doc(files), [("bin/k3s", GOOD + b"X")])
    elif case == "dotdot-in-manifest":
        signed_bundle(out, release_key, manifest_doc([entry("../../usr/bin/k3s", GOOD)]), [])
    elif case == "absolute-in-manifest":
        signed_bundle(out, release_key, manifest_doc([entry("/usr/local/bin/k3s", GOOD)]), [])
    elif case == "dotdot-member":
        signed_bundle(out, release_key, manifest_doc(files), [("../k3s", GOOD)])
    elif case == "symlink-member":
        signed_bundle(out, release_key, manifest_doc(files), [])
        with tarfile.open(out, "a") as tf:
            link = tarfile.TarInfo("bin/k3s")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
            tf.addfile(link)
    elif case == "unlisted-member":
        signed_bundle(out, release_key, manifest_doc(files), [*payload, ("extra", b"x")])
    elif case == "missing-file":
        signed_bundle(out, release_key, manifest_doc([*files, entry("two", b"2")]), payload)
    elif case == "wrong-architecture":
        other = "arm64" if ARCH != "arm64" else "amd64"
        signed_bundle(out, release_key, manifest_doc(files, architecture=other), payload)
    elif case == "no-keys":
        signed_bundle(out, release_key, manifest_doc(files), payload)
        keys = []
    scratch = tmp_path / "scratch"
    with pytest.raises(BundleError, match=message):
        _verify(out, keys, scratch)
    assert not scratch.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar"]


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_truncated_bundle_is_refused(
    tmp_path: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey], keep: float
) -> None:
    big = hashlib.sha256(b"seed").digest() * 20000
    out = signed_bundle(tmp_path / "b.tar", release_key, manifest_doc([entry("k3s", big)]), [("k3s", big)])
    raw = out.read_bytes()
    out.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(BundleError, match="truncated"):
        _verify(out, release_keys, tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


def test_manifest_errors_name_the_field(
    tmp_path: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey]
) -> None:
    doc = manifest_doc([entry("k3s", GOOD)], kind="firmware", version="../1")
    out = signed_bundle(tmp_path / "b.tar", release_key, doc, [("k3s", GOOD)])
    with pytest.raises(BundleError) as err:
        _verify(out, release_keys, tmp_path / "scratch")
    assert "kind" in str(err.value) and "version" in str(err.value)


def test_bad_release_key_config_names_the_entry() -> None:
    with pytest.raises(BundleError, match=r"release_keys\[1\]: expected a raw 32-byte"):
        load_release_keys(["A" * 43 + "=", "AAAA"])


def test_a_bundle_made_with_plain_tar_is_accepted(
    tmp_path: Path, release_key: Ed25519PrivateKey, release_keys: list[ReleaseKey]
) -> None:
    import json
    import subprocess

    from agent.upgrade.signing import sign

    d = tmp_path / "tree"
    d.mkdir()
    raw = json.dumps(manifest_doc([entry("bin/k3s", GOOD)])).encode()
    (d / "manifest.json").write_bytes(raw)
    (d / "manifest.sig").write_bytes(sign(release_key, raw))
    (d / "bin").mkdir()
    (d / "bin/k3s").write_bytes(GOOD)
    out = tmp_path / "b.tar"
    subprocess.run(["tar", "-C", str(d), "-cf", str(out), "./manifest.json", "./manifest.sig", "./bin"], check=True)
    v = verify_bundle(out, release_keys, tmp_path / "s", architecture=ARCH)
    assert (v.directory / "bin/k3s").read_bytes() == GOOD
