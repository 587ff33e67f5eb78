"""Runs ON a managed host (python3, standard library only; sent by disposable.proof.fingerprint).

argv[1] is a JSON object: {"venv_python": path, "file_roots": [paths], "packages_of_interest": {...}}.
Prints one JSON object: the host's facts that a rebuild must reproduce exactly. Volatile
things (host keys, machine-id, timestamps, logs, caches, bytecode) are never read.
"""

import hashlib
import json
import os
import subprocess
import sys

SKIP_PARTS = {"__pycache__"}
SKIP_SUFFIXES = (".pyc",)


def sh(*argv):
    """A command's output; "" when it fails or is not installed (e.g. dkms on a CPU host)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def packages():
    out = sh("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}:${Architecture}\t${Version}\n")
    result = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status[1:2] == "i":  # installed; the first letter is the selection (i install, h hold)
            result[name] = version
    return result


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files(roots):
    """path -> sha256 (or '-> target' for a symlink) under each root; roots that are absent are recorded as such."""
    result = {}
    for root in roots:
        if not os.path.lexists(root):
            result[root] = "absent"
            continue
        if os.path.isfile(root) or os.path.islink(root):
            candidates = [root]
        else:
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_PARTS)
                candidates += [os.path.join(dirpath, f) for f in filenames if not f.endswith(SKIP_SUFFIXES)]
                candidates += [os.path.join(dirpath, d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for path in sorted(candidates):
            if os.path.islink(path):
                result[path] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                result[path] = sha256(path)
    return result


def venv_freeze(python):
    if not os.path.exists(python):
        return []
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted(d.metadata['Name'].lower() + '==' + d.version for d in m.distributions())))"
    )
    out = sh(python, "-c", code)
    return json.loads(out) if out else []


def unit_state(name):
    return {"enabled": sh("systemctl", "is-enabled", name) or "absent", "active": sh("systemctl", "is-active", name)}


def main():
    config = json.loads(sys.argv[1])
    pkgs = packages()
    virt = sh("systemd-detect-virt") or "none"
    facts = {
        "os": {
            "debian_version": sh("cat", "/etc/debian_version"),
            "arch": sh("dpkg", "--print-architecture"),
        },
        "virtualization": virt,
        "packages": pkgs,
        "holds": sorted(sh("apt-mark", "showhold").split()),
        "kernel": {"installed": sorted(k + "=" + v for k, v in pkgs.items() if k.startswith("linux-image-"))},
        "driver": {
            "packages": {k: v for k, v in pkgs.items() if k.split(":")[0] in config["driver_packages"]},
            "dkms": sh("dkms", "status"),
        },
        "cuda": {
            "packages": {k: v for k, v in pkgs.items() if k.split(":")[0] in config["cuda_packages"]},
            "nvcc": sh("/usr/local/bin/nvcc", "--version").splitlines()[-2:],
        },
        "venv": venv_freeze(config["venv_python"]),
        "files": files(config["file_roots"]),
        "users": {name: sh("getent", "passwd", name) for name in config["users"]},
        "units": {name: unit_state(name) for name in config["units"]},
    }
    if virt not in ("lxc", "lxc-libvirt", "docker", "podman", "openvz", "systemd-nspawn"):
        # A VM boots its own kernel; a container runs the LXD host's (volatile for the host spec).
        facts["kernel"]["running"] = sh("uname", "-r")
    json.dump(facts, sys.stdout, sort_keys=True)


main()
