"""Model artifact: ``model.safetensors`` + ``manifest.json`` in one directory.

Writing computes the sha256 of the weights file into the manifest. Loading is built for
weights of several gigabytes: the file is hashed while it is streamed (fixed-size
chunks, nothing kept), compared with the manifest (and with an operator-pinned hash if
one is configured), and only then memory-mapped by safetensors; the network is built
on the ``meta`` device and takes the mapped tensors as its parameters, so peak memory
is about one file size (the pages of the mapping), not two or three (the bytes read,
the deserialised tensors, the module's own parameters). No pickle anywhere:
safetensors holds only tensors.

Time of check / time of use: the file is hashed through one open file and mapped
later through another open. The service checks that both opens see the same file
(device, inode, size, mtime and ctime, from ``fstat``) and maps it through
``/proc/self/fd`` of the descriptor it just checked, so a file replaced by rename
(how deployments install a new model) is refused, never half-verified. What remains
is an in-place write that preserves mtime and ctime between the two opens: that needs
root, and the weights are root-owned and read-only to the service.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as load_safetensors_file
from safetensors.torch import save as save_safetensors

from demand_predictor.features import FeatureSpec
from demand_predictor.model import QUANTILES, Architecture, DemandNet

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"


class ArtifactError(RuntimeError):
    """The artifact is missing, malformed or fails verification."""


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    version: str
    weights_file: str
    sha256: str
    architecture: Architecture
    features: FeatureSpec
    raw: dict[str, Any]


@dataclass(frozen=True)
class LoadedModel:
    net: DemandNet
    manifest: Manifest
    device: torch.device


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(
    out_dir: Path,
    net: DemandNet,
    arch: Architecture,
    spec: FeatureSpec,
    name: str,
    version: str,
    training: dict[str, Any],
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = save_safetensors(tensors)
    (out_dir / WEIGHTS_FILE).write_bytes(blob)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": {"name": name, "version": version},
        "weights": {
            "file": WEIGHTS_FILE,
            "format": "safetensors",
            "sha256": sha256_hex(blob),
            "size_bytes": len(blob),
        },
        "architecture": arch.to_json(),
        "features": spec.to_json(),
        "output": {
            "target": "rides requested in the zone in the next 15 minutes",
            "quantiles": list(QUANTILES),
            "interval_coverage": QUANTILES[2] - QUANTILES[0],
        },
        "training": training,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out_dir / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return manifest


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"{path}: manifest not found (train one with "
            f"`python -m demand_predictor.train --out {model_dir}`)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest: {exc}") from exc
    try:
        if raw["format_version"] != FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: format_version {raw['format_version']!r} is not {FORMAT_VERSION}"
            )
        weights_file = str(raw["weights"]["file"])
        if "/" in weights_file or "\\" in weights_file or weights_file in ("", ".", ".."):
            raise ArtifactError(f"{path}: weights.file must be a plain file name")
        sha = str(raw["weights"]["sha256"]).lower()
        if len(sha) != 64:
            raise ArtifactError(f"{path}: weights.sha256 must be 64 hex characters")
        return Manifest(
            path=path,
            name=str(raw["model"]["name"]),
            version=str(raw["model"]["version"]),
            weights_file=weights_file,
            sha256=sha,
            architecture=Architecture.from_json(raw["architecture"]),
            features=FeatureSpec.from_json(raw["features"]),
            raw=raw,
        )
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: malformed manifest: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class VerifiedWeights:
    """A weights file whose sha256 matched, and the identity of the file that was hashed."""

    path: Path
    sha256: str
    size: int
    identity: tuple[int, ...]  # (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)


@dataclass(frozen=True)
class VerifiedArtifact:
    manifest: Manifest
    weights: VerifiedWeights


def file_identity(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def sha256_file(path: Path) -> tuple[str, int, tuple[int, ...]]:
    """(sha256, size, identity) of a file, streamed: memory use does not grow with it."""
    try:
        with path.open("rb", buffering=0) as handle:
            before = file_identity(os.fstat(handle.fileno()))
            digest = hashlib.file_digest(handle, "sha256")  # reads in 256 KiB chunks
            after = file_identity(os.fstat(handle.fileno()))
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read weights: {exc.strerror}") from exc
    if before != after:
        raise ArtifactError(f"{path}: weights file changed while its checksum was computed")
    return digest.hexdigest(), before[2], before


class _Tee:
    """A readable stream that copies what is read from ``source`` to ``sink``: lets the
    streaming hash below hash a download while it is written to disk."""

    def __init__(self, source: Any, sink: Any, max_bytes: int | None) -> None:
        self.source, self.sink, self.max_bytes, self.size = source, sink, max_bytes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.source.readinto(buffer)
        if n:
            self.size += n
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise ArtifactError(f"stream exceeds the expected {self.max_bytes} bytes")
            if self.sink is not None:
                self.sink.write(memoryview(buffer)[:n])
        return n or 0


def sha256_stream(source: Any, sink: Any = None, max_bytes: int | None = None) -> tuple[str, int]:
    """(sha256, size) of a binary stream (anything with ``readinto``), hashed in the same
    fixed-size chunks as the weights check, optionally copied to ``sink`` on the way;
    nothing is kept in memory. Refuses streams longer than ``max_bytes``."""
    tee = _Tee(source, sink, max_bytes)
    digest = hashlib.file_digest(tee, "sha256")  # type: ignore[arg-type]
    return digest.hexdigest(), tee.size


def verify_weights(
    path: Path, expected_sha256: str, expected_from: str, pinned_sha256: str = ""
) -> VerifiedWeights:
    """Hash ``path`` once (streaming) and compare with the expected and pinned hashes."""
    actual, size, identity = sha256_file(path)
    if actual != expected_sha256:
        raise ArtifactError(
            f"checksum mismatch for {path}: expected sha256 {expected_sha256} "
            f"(from {expected_from}), actual {actual}"
        )
    if pinned_sha256 and actual != pinned_sha256:
        raise ArtifactError(
            f"checksum mismatch for {path}: expected sha256 {pinned_sha256} "
            f"(from DP_EXPECTED_SHA256), actual {actual}"
        )
    return VerifiedWeights(path=path, sha256=actual, size=size, identity=identity)


def load_verified_tensors(weights: VerifiedWeights) -> dict[str, torch.Tensor]:
    """The tensors of a verified safetensors file, memory-mapped (no copy, no read).

    The file is opened, checked to be the very file that was hashed (see the module
    docstring), and mapped through that descriptor; the tensors are CPU tensors backed
    by the mapping (pages are read on first touch and count once in RSS).
    """
    path = weights.path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot open weights: {exc.strerror}") from exc
    try:
        if file_identity(os.fstat(fd)) != weights.identity:
            raise ArtifactError(
                f"{path}: weights file changed since its checksum was verified; refusing "
                "to load it (restart to verify the new file)"
            )
        proc_fd = Path(f"/proc/self/fd/{fd}")
        source = proc_fd if proc_fd.exists() else path  # the descriptor just checked
        try:
            tensors = load_safetensors_file(str(source), device="cpu")
        except Exception as exc:  # safetensors raises several types for bad files
            raise ArtifactError(f"{path}: not a readable safetensors file: {exc}") from exc
        if file_identity(os.fstat(fd)) != weights.identity:
            raise ArtifactError(f"{path}: weights file changed while it was being loaded")
    finally:
        os.close(fd)
    return tensors


def verify(model_dir: Path, pinned_sha256: str = "") -> VerifiedArtifact:
    """Manifest + weights whose sha256 matches the manifest (and the pinned hash, if any)."""
    manifest = read_manifest(model_dir)
    path = model_dir / manifest.weights_file
    weights = verify_weights(path, manifest.sha256, str(manifest.path), pinned_sha256)
    return VerifiedArtifact(manifest=manifest, weights=weights)


def load(
    model_dir: Path,
    device: torch.device,
    pinned_sha256: str = "",
    verified: VerifiedArtifact | None = None,
) -> LoadedModel:
    """Verify (unless ``verified`` is given: hashed earlier, e.g. before binding the port),
    map the weights and build the network on ``device``."""
    if verified is None:
        verified = verify(model_dir, pinned_sha256)
    manifest = verified.manifest
    tensors = load_verified_tensors(verified.weights)
    try:
        with torch.device("meta"):  # no memory for parameters that are replaced at once
            net = DemandNet(manifest.architecture)
        net.load_state_dict(tensors, strict=True, assign=True)
    except Exception as exc:  # torch raises several types for tensors that do not fit
        raise ArtifactError(
            f"{model_dir / manifest.weights_file}: weights do not fit the manifest "
            f"architecture: {exc}"
        ) from exc
    net.eval()
    net.to(device)
    return LoadedModel(net=net, manifest=manifest, device=device)
