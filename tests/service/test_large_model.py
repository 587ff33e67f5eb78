"""A model of about 1.5 GiB loads through the service's real load path with peak memory
of about one file size: the weights are hashed while streamed, then memory-mapped.

The artifact is a ``DemandNet`` whose hidden layer is 20,000 wide (a 20,000 x 20,000
float32 matrix), written here in chunks (the test process never holds it). A child
process runs ``artifact.load`` (manifest, streamed sha256, mmap, module built on the
meta device), then reads every byte of every parameter (hashing it, compared with
what was written) and runs a forward pass, and reports its peak RSS. The old path
(read the bytes, ``safetensors.load(bytes)``, copy into a module) peaked near 3x.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import SERVICE_DIR

HIDDEN = 20_000
PEAK_RSS_LIMIT = 1.3  # x the weights file size

CHILD = r"""
import hashlib, json, resource, sys, time
from pathlib import Path

import torch
from demand_predictor import artifact


def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


before = status()
started = time.perf_counter()
loaded = artifact.load(Path(sys.argv[1]), torch.device("cpu"))
load_s = time.perf_counter() - started
after_load = status()
started = time.perf_counter()
digests = {
    name: hashlib.sha256(memoryview(t.detach().numpy())).hexdigest()
    for name, t in loaded.net.state_dict().items()
}
with torch.inference_mode():
    out = loaded.net(torch.zeros(1, dtype=torch.long), torch.zeros(1, 16))
use_s = time.perf_counter() - started
after_use = status()
print(json.dumps({
    "load_s": load_s,
    "use_s": use_s,
    "before": before,
    "after_load": after_load,
    "after_use": after_use,
    "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "digests": digests,
    "out_shape": list(out.shape),
}))
"""


def write_large_artifact(model_dir: Path, out_dir: Path) -> tuple[Path, dict[str, str]]:
    """Copy the trained manifest, widen the network, write the weights in chunks."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    arch = manifest["architecture"]
    arch["hidden"] = HIDDEN
    n_in = arch["zone_embedding"] + arch["n_features"]
    shapes = {
        "body.0.bias": (HIDDEN,),
        "body.0.weight": (HIDDEN, n_in),
        "body.2.bias": (HIDDEN,),
        "body.2.weight": (HIDDEN, HIDDEN),
        "body.4.bias": (3,),
        "body.4.weight": (3, HIDDEN),
        "zone_embedding.weight": (arch["n_zones"], arch["zone_embedding"]),
    }
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 4 * int(np.prod(shape))
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(8 + len(head)) % 8)  # tensor data 8-byte aligned, as safetensors pads
    path = out_dir / "model.safetensors"
    whole = hashlib.sha256()
    per_tensor: dict[str, str] = {}
    rows_per_chunk = 512
    pattern = ((np.arange(rows_per_chunk * HIDDEN) % 1021) * 1e-4 - 0.05).astype(np.float32)
    with path.open("wb") as handle:

        def put(data: bytes, digest: hashlib._Hash) -> None:
            handle.write(data)
            whole.update(data)
            digest.update(data)

        put(struct.pack("<Q", len(head)) + head, hashlib.sha256())
        for name, shape in shapes.items():
            digest = hashlib.sha256()
            if name == "body.2.weight":
                for start in range(0, HIDDEN, rows_per_chunk):
                    rows = min(rows_per_chunk, HIDDEN - start)
                    put(pattern[: rows * HIDDEN].tobytes(), digest)
            else:
                values = (np.arange(int(np.prod(shape))) % 7 * 0.01).astype(np.float32)
                put(values.tobytes(), digest)
            per_tensor[name] = digest.hexdigest()
    manifest["weights"].update(sha256=whole.hexdigest(), size_bytes=path.stat().st_size)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path, per_tensor


def test_large_model_loads_within_1_3x_its_size(model_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big-model"
    big.mkdir()
    weights, expected = write_large_artifact(model_dir, big)
    try:
        size = weights.stat().st_size
        assert size >= 1 << 30
        env = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
        env["PYTHONPATH"] = str(SERVICE_DIR)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(big)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        weights.unlink()  # 1.5 GiB: do not leave it in pytest's kept temp directories
    peak = max(report["ru_maxrss"], report["after_use"]["VmHWM"])
    gib = 1 << 30
    before, after = report["before"], report["after_use"]
    print(
        f"\nlarge model: file {size / gib:.2f} GiB; peak RSS {peak / gib:.2f} GiB "
        f"({peak / size:.2f}x the file; limit {PEAK_RSS_LIMIT}x); verify+mmap load "
        f"{report['load_s']:.2f} s, reading every weight + forward {report['use_s']:.2f} s; "
        f"RSS before load {before['VmRSS'] / gib:.2f} GiB, growth: file-backed "
        f"{(after['RssFile'] - before['RssFile']) / gib:.2f} GiB, anonymous "
        f"{(after['RssAnon'] - before['RssAnon']) / gib:.2f} GiB"
    )
    # What was loaded is what was written (and every page of it was read).
    assert report["digests"] == expected
    assert report["out_shape"] == [1, 3]
    assert peak <= PEAK_RSS_LIMIT * size
