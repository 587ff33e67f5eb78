"""Runs ON a managed host (python3, standard library only; sent by disposable.proof.fingerprint).

argv[1] is a JSON object: {"venv_python", "file_roots", "driver_packages", "cuda_packages",
"users", "units"}. Prints one JSON object: the host's facts that a rebuild must reproduce
exactly. Volatile things (host keys, machine-id, timestamps, logs, caches, bytecode) are
never read. A probe that fails is an error (listed in "errors", exit status 3), never an
empty value that would compare equal to another empty value.
"""

import base64
import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

SKIP_PARTS = {"__pycache__"}
SKIP_SUFFIXES = (".pyc",)
# Per-instance identity, new on every rebuild by design: never compared.
VOLATILE_NAMES = ("machine-id",)
VOLATILE_PREFIXES = ("ssh_host_",)
ERRORS = []
# Files of at least BIG bytes are hashed by a pool of threads (hashlib and reads release the
# GIL) while the main thread hashes the many small ones (small files in threads were slower).
BIG = 1 << 20
WORKERS = 2 * (os.cpu_count() or 1)


def run(argv, ok=(0,), optional=False):
    """A command's output. `ok`: exit codes that are answers, not failures (systemctl
    is-enabled says "disabled" with exit 1). `optional`: a tool a host may lack (dkms on a
    CPU host) -> "absent". Anything else is recorded as an error."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        if optional:
            return "absent"
        ERRORS.append(f"{argv[0]}: not installed")
        return ""
    if proc.returncode not in ok:
        ERRORS.append(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()[:300]}")
        return ""
    return proc.stdout.strip()


def packages():
    out = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}:${Architecture}\t${Version}\n"])
    result = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status[1:2] == "i":  # installed; the first letter is the selection (i install, h hold)
            result[name] = version
    if not result:
        ERRORS.append("dpkg-query listed no installed package")
    return result


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def owner(info):
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return f"{user}:{group}"


def describe(path):
    """'<sha256> <mode> <owner:group>' for a file, '-> <target>' for a link."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "-> " + os.readlink(path)
    return f"{sha256(path)} {stat.S_IMODE(info.st_mode):04o} {owner(info)}"


def volatile(name):
    return name.endswith(SKIP_SUFFIXES) or name in VOLATILE_NAMES or name.startswith(VOLATILE_PREFIXES)


def files(roots, excluded=()):
    """path -> description under each root (never below an excluded directory); roots
    that are absent are recorded as such."""
    result = {}
    excluded = {os.path.normpath(e) for e in excluded}
    for root in roots:
        if not os.path.lexists(root):
            result[root] = "absent"
            continue
        if os.path.isfile(root) or os.path.islink(root):
            candidates = [root]
        else:
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(
                    d for d in dirnames if d not in SKIP_PARTS and os.path.join(dirpath, d) not in excluded
                )
                candidates += [os.path.join(dirpath, f) for f in filenames if not volatile(f)]
                candidates += [os.path.join(dirpath, d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for path in sorted(candidates):
            try:
                result[path] = describe(path)
            except OSError as exc:
                ERRORS.append(f"{path}: {exc.strerror}")
    return result


def venv_facts(python):
    """The venv's packages (a freeze) and whether its installed files still match the
    hashes their wheels recorded (RECORD): edited, missing and unrecorded files."""
    if not os.path.exists(python):
        return [], {"absent": True}
    code = (
        "import importlib.metadata as m, json, sysconfig;"
        "print(json.dumps({'site': sysconfig.get_paths()['purelib'], 'dists': sorted("
        "d.metadata['Name'].lower() + '==' + d.version for d in m.distributions())}))"
    )
    out = run([python, "-c", code])
    if not out:
        return [], {}
    data = json.loads(out)
    return data["dists"], record_check(data["site"])


def record_hash(path):
    with open(path, "rb") as content:
        return base64.urlsafe_b64encode(hashlib.sha256(content.read()).digest()).rstrip(b"=").decode()


def differing(checks):
    """The paths of (path, RECORD hash) pairs whose content hashes to something else."""
    big, small = [], []
    for check in checks:
        (big if os.path.getsize(check[0]) >= BIG else small).append(check)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        big_hashes = pool.map(lambda check: record_hash(check[0]), big)
        found = [path for path, want in small if record_hash(path) != want]
        found += [path for (path, want), have in zip(big, big_hashes, strict=True) if have != want]
    return found


def record_check(site):
    recorded, checks, missing = set(), [], []
    for entry in sorted(os.listdir(site)):
        record = os.path.join(site, entry, "RECORD")
        if not entry.endswith(".dist-info") or not os.path.exists(record):
            continue
        recorded.add(os.path.normpath(record))
        with open(record, newline="") as handle:
            for line in handle:
                name, _, rest = line.rstrip("\n").partition(",")
                digest = rest.partition(",")[0]
                path = os.path.normpath(os.path.join(site, name))
                recorded.add(path)
                if not digest.startswith("sha256=") or name.endswith(SKIP_SUFFIXES):
                    continue
                if not os.path.exists(path):
                    missing.append(os.path.relpath(path, site))
                    continue
                checks.append((path, digest[len("sha256=") :]))
    modified = [os.path.relpath(path, site) for path in differing(checks)]
    unrecorded = []
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = [d for d in dirnames if d not in SKIP_PARTS]
        for name in filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            if path not in recorded and not name.endswith(SKIP_SUFFIXES):
                unrecorded.append(os.path.relpath(path, site))
    return {"modified": sorted(modified), "missing": sorted(missing), "unrecorded": sorted(unrecorded)}


def unit_state(name):
    return {
        "enabled": run(["systemctl", "is-enabled", name], ok=(0, 1)) or "absent",
        "active": run(["systemctl", "is-active", name], ok=(0, 3, 4)),
    }


def main():
    config = json.loads(sys.argv[1])
    pkgs = packages()
    virt = run(["systemd-detect-virt"], ok=(0, 1)) or "none"
    venv, venv_integrity = venv_facts(config["venv_python"])
    facts = {
        "os": {
            "debian_version": run(["cat", "/etc/debian_version"]),
            "arch": run(["dpkg", "--print-architecture"]),
        },
        "virtualization": virt,
        "packages": pkgs,
        "holds": sorted(run(["apt-mark", "showhold"]).split()),
        "kernel": {"installed": sorted(k + "=" + v for k, v in pkgs.items() if k.startswith("linux-image-"))},
        "driver": {
            "packages": {k: v for k, v in pkgs.items() if k.split(":")[0] in config["driver_packages"]},
            "dkms": run(["dkms", "status"], optional=True),
        },
        "cuda": {
            "packages": {k: v for k, v in pkgs.items() if k.split(":")[0] in config["cuda_packages"]},
            "nvcc": run(["/usr/local/bin/nvcc", "--version"], optional=True).splitlines()[-2:],
        },
        "venv": venv,
        "venv_integrity": venv_integrity,
        "files": files(config["file_roots"], config.get("excluded", [])),
        "users": {name: run(["getent", "passwd", name], ok=(0, 2)) or "absent" for name in config["users"]},
        "units": {name: unit_state(name) for name in config["units"]},
    }
    if virt not in ("lxc", "lxc-libvirt", "docker", "podman", "openvz", "systemd-nspawn"):
        # A VM boots its own kernel; a container runs the LXD host's (volatile for the host spec).
        facts["kernel"]["running"] = run(["uname", "-r"])
    facts["errors"] = ERRORS
    json.dump(facts, sys.stdout, sort_keys=True)
    return 3 if ERRORS else 0


if __name__ == "__main__":
    sys.exit(main())
