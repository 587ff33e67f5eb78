"""Model artifact: ``model.safetensors`` + ``manifest.json`` in one directory.

Writing computes the sha256 of the weights file into the manifest. Loading reads the
weights bytes once, hashes exactly those bytes, compares with the manifest (and with an
operator-pinned hash if one is configured) and only then deserialises them, so what is
verified is what is loaded. No pickle anywhere: safetensors holds only tensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
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


def read_verified_weights(model_dir: Path, manifest: Manifest, pinned_sha256: str = "") -> bytes:
    """Weights bytes whose sha256 matches the manifest (and the pinned hash, if any)."""
    path = model_dir / manifest.weights_file
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read weights: {exc.strerror}") from exc
    actual = sha256_hex(blob)
    if actual != manifest.sha256:
        raise ArtifactError(
            f"checksum mismatch for {path}: expected sha256 {manifest.sha256} "
            f"(from {manifest.path}), actual {actual}"
        )
    if pinned_sha256 and actual != pinned_sha256:
        raise ArtifactError(
            f"checksum mismatch for {path}: expected sha256 {pinned_sha256} "
            f"(from DP_EXPECTED_SHA256), actual {actual}"
        )
    return blob


def load(model_dir: Path, device: torch.device, pinned_sha256: str = "") -> LoadedModel:
    manifest = read_manifest(model_dir)
    blob = read_verified_weights(model_dir, manifest, pinned_sha256)
    try:
        tensors = load_safetensors(blob)
        net = DemandNet(manifest.architecture)
        net.load_state_dict(tensors, strict=True)
    except Exception as exc:  # safetensors/torch raise several types for bad files
        raise ArtifactError(
            f"{model_dir / manifest.weights_file}: weights do not fit the manifest "
            f"architecture: {exc}"
        ) from exc
    net.eval()
    net.to(device)
    return LoadedModel(net=net, manifest=manifest, device=device)
