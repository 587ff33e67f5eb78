"""Runs under Debian's /usr/bin/python3 with python3-apt, in a private apt root that the
controller prepared (its own sources, keys, preferences and an EMPTY dpkg status), so the
answer depends only on the archive, never on what this machine has installed.

    python3 apt_resolve.py COMMAND REQUEST.json   ->  JSON on stdout

update   refresh the package lists of the root's sources
resolve  the full closure of the host image (debootstrap's minbase + includes) and of every
         package hosts install, at the newest version apt's preferences allow; no Recommends
lookup   which of the given (name, version, architecture) the archive offers, with sha256
fetch    download the given packages into a folder, each checked against its sha256
"""

import fnmatch
import json
import os
import sys

import apt
import apt.progress.base
import apt_pkg


def open_cache(root, architecture):
    apt_pkg.init_config()
    apt_pkg.config.set("APT::Architecture", architecture)
    apt_pkg.config.clear("APT::Architectures")
    apt_pkg.config.set("APT::Architectures::", architecture)
    apt_pkg.config.set("APT::Install-Recommends", "false")
    apt_pkg.config.set("APT::Install-Suggests", "false")
    apt_pkg.config.set("APT::Sandbox::User", "root")  # the root lives in the controller's cache
    apt_pkg.config.set("Acquire::Languages", "none")
    return apt.Cache(rootdir=root)


def update(request):
    cache = open_cache(request["root"], request["architecture"])
    try:
        cache.update(raise_on_error=True)
    except apt.cache.FetchFailedException as exc:
        return {"error": f"could not refresh the package lists: {exc}"}
    return {"ok": True}


def _entry(pkg):
    version = pkg.candidate
    origin = version.origins[0] if version.origins else None
    suite = origin.codename if origin and origin.codename else (origin.archive if origin else "unknown")
    return {
        "name": pkg.shortname,
        "version": version.version,
        "architecture": version.architecture,
        "sha256": version.sha256,
        "suite": suite,
        "size": version.size,
    }


def resolve(request):
    cache = open_cache(request["root"], request["architecture"])
    errors = []
    unknown = [n for n in request["image_roots"] + request["host_roots"] if n not in cache or not cache[n].candidate]
    if unknown:
        return {"error": "no installable candidate for: " + ", ".join(sorted(set(unknown)))}
    with cache.actiongroup():
        # debootstrap's bookworm script: usr-is-merged first, so init-system-helpers'
        # "usrmerge | usr-is-merged" is already satisfied when the required set is marked.
        for name in request["image_roots"]:
            if name in request["minbase_first"]:
                cache[name].mark_install()
        if request["minbase"]:
            for pkg in cache:
                if (
                    pkg.candidate
                    and pkg.candidate.priority == "required"
                    and pkg.architecture() == request["architecture"]
                ):
                    pkg.mark_install()
        for name in request["image_roots"]:
            cache[name].mark_install()
    if cache.broken_count:
        errors.append(f"the image set does not resolve ({cache.broken_count} broken package(s))")
    image = {p.name for p in cache.get_changes()}
    with cache.actiongroup():
        for name in request["host_roots"]:
            cache[name].mark_install()
    if cache.broken_count:
        broken = sorted(p.name for p in cache if p.is_inst_broken or p.marked_install and not p.candidate)
        errors.append(f"the host packages do not resolve; broken: {', '.join(broken) or cache.broken_count}")
    not_marked = [n for n in request["image_roots"] + request["host_roots"] if not cache[n].marked_install]
    if not_marked:
        errors.append("apt would not install: " + ", ".join(not_marked))
    entries = []
    for pkg in sorted(cache.get_changes(), key=lambda p: p.name):
        entry = _entry(pkg)
        entry["set"] = "image" if pkg.name in image else "hosts"
        entries.append(entry)
    for name, pattern in sorted(request["enforce"].items()):
        if name not in cache or not cache[name].marked_install:
            continue
        chosen = cache[name].candidate.version
        if not fnmatch.fnmatchcase(chosen, pattern):
            available = ", ".join(v.version for v in cache[name].versions)
            errors.append(f"{name}: no version in the series {pattern} (chose {chosen}; the archive has {available})")
    if errors:
        return {"error": "; ".join(errors)}
    return {"entries": entries}


def _find(cache, name, version, architecture):
    key = name if architecture in ("all", cache_arch(cache)) else f"{name}:{architecture}"
    if key not in cache:
        return None
    for candidate in cache[key].versions:
        if candidate.version == version and candidate.architecture == architecture:
            return candidate
    return None


def cache_arch(cache):
    return apt_pkg.config.find("APT::Architecture")


def lookup(request):
    cache = open_cache(request["root"], request["architecture"])
    found = {}
    for name, version, architecture in request["wanted"]:
        candidate = _find(cache, name, version, architecture)
        if candidate is not None and candidate.uri:
            origin = candidate.origins[0] if candidate.origins else None
            found[f"{name} {version} {architecture}"] = {
                "sha256": candidate.sha256,
                "suite": origin.codename if origin else "unknown",
                "uri": candidate.uri,
                "size": candidate.size,
            }
    return {"found": found}


class _Quiet(apt.progress.base.AcquireProgress):
    pass


def fetch(request):
    cache = open_cache(request["root"], request["architecture"])
    acquire = apt_pkg.Acquire(_Quiet())
    items, errors = [], []
    os.makedirs(request["dest"], exist_ok=True)
    for name, version, architecture, sha256 in request["items"]:
        candidate = _find(cache, name, version, architecture)
        if candidate is None or not candidate.uri:
            errors.append(f"{name} {version} ({architecture}) is not in the archive")
            continue
        target = os.path.join(request["dest"], f"{name}_{version.replace(':', '%3a')}_{architecture}.deb")
        # apt's file: method links to the archive's file instead of copying it; the store
        # must hold the bytes themselves (an archive on disk may vanish), so copy: instead.
        uri = "copy:" + candidate.uri[len("file:") :] if candidate.uri.startswith("file:") else candidate.uri
        items.append(apt_pkg.AcquireFile(acquire, uri, hash=f"sha256:{sha256}", size=candidate.size, destfile=target))
    if items:
        acquire.run()
    for item in items:
        if item.status != item.STAT_DONE:
            errors.append(f"{os.path.basename(item.destfile)}: {item.error_text or 'download failed'}")
    if errors:
        return {"error": "; ".join(errors)}
    return {"files": [item.destfile for item in items]}


COMMANDS = {"update": update, "resolve": resolve, "lookup": lookup, "fetch": fetch}


def main():
    command, request_file = sys.argv[1], sys.argv[2]
    with open(request_file) as handle:
        request = json.load(handle)
    json.dump(COMMANDS[command](request), sys.stdout)


main()
