"""The apt lock: its format, its diff, the comparison with a host, the series rules, and the
frozen/default modes, against a real archive that the test makes move (tests/fixtures:
real .debs, signed with aptly, read by python3-apt over file://). No containers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from disposable.errors import DisposableError
from disposable.packages import aptlock, supply
from disposable.packages.aptlock import AptLock, LockEntry
from disposable.packages.store import PackageStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from apt_archive import FakeArchive, FakePackage  # noqa: E402

SHA_A, SHA_B = "a" * 64, "b" * 64
LOCK_TEXT = f"""# a header line
# columns: package version architecture sha256 suite set
base-files 12.4+deb12u15 amd64 {SHA_A} bookworm image
linux-image-amd64 6.1.192-2 amd64 {SHA_B} bookworm-security hosts
"""


# -- format ---------------------------------------------------------------------------
def test_lock_round_trips_and_its_hash_ignores_comments() -> None:
    lock = aptlock.parse(LOCK_TEXT)
    assert [e.name for e in lock.entries] == ["base-files", "linux-image-amd64"]
    assert lock.versions()["linux-image-amd64"] == "6.1.192-2"
    assert [e.name for e in lock.subset("image")] == ["base-files"]
    assert aptlock.parse(lock.render()).hash == lock.hash
    assert aptlock.parse(LOCK_TEXT.replace("# a header line", "# another header")).hash == lock.hash
    assert lock.prefix == f"lock-{lock.hash[:12]}"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"curl 7.88 amd64 {SHA_A} bookworm", "expected 6 fields"),
        ("curl 7.88 amd64 nothex bookworm hosts", "sha256 'nothex'"),
        (f"curl 7.88 amd64 {SHA_A} bookworm everywhere", "set 'everywhere'"),
        (f"base-files 12.5 amd64 {SHA_A} bookworm image", "base-files:amd64 is locked twice (first on line 3)"),
    ],
)
def test_malformed_lock_lines_are_named_with_their_line_number(line: str, message: str) -> None:
    with pytest.raises(DisposableError) as error:
        aptlock.parse(LOCK_TEXT + line + "\n", "debian-12.lock")
    assert "debian-12.lock:5" in str(error.value) and message in str(error.value)


def test_diff_names_moves_and_security_updates() -> None:
    old = aptlock.parse(LOCK_TEXT)
    new = AptLock(
        (
            LockEntry("base-files", "12.4+deb12u15", "amd64", SHA_A, "bookworm", "image"),
            LockEntry("linux-image-amd64", "6.1.192-3", "amd64", SHA_A, "bookworm-security", "hosts"),
            LockEntry("linux-image-6.1.0-57-amd64", "6.1.192-3", "amd64", SHA_B, "bookworm-security", "hosts"),
            LockEntry("tzdata", "2026f-0+deb12u1", "all", SHA_B, "bookworm-updates", "image"),
        )
    )
    described = [m.describe() for m in aptlock.diff(old, new)]
    assert described == [
        "linux-image-6.1.0-57-amd64: added 6.1.192-3 (security update, bookworm-security)",
        "linux-image-amd64: 6.1.192-2 -> 6.1.192-3 (security update, bookworm-security)",
        "tzdata: added 2026f-0+deb12u1 (not a security update, bookworm-updates)",
    ]
    assert [m.describe() for m in aptlock.diff(new, old)][0] == "linux-image-6.1.0-57-amd64: 6.1.192-3 -> removed"


def test_installed_packages_compared_with_the_lock() -> None:
    lock = aptlock.parse(LOCK_TEXT)
    installed = {"base-files:amd64": "12.4+deb12u15", "linux-image-amd64:amd64": "6.1.192-3", "curl:amd64": "7.88"}
    result = aptlock.compare_installed(lock, installed, ["base-files", "nvidia-smi"])
    assert result.extra == {"curl:amd64": "7.88"}
    assert result.different == {"linux-image-amd64:amd64": ("6.1.192-3", "6.1.192-2")}
    assert result.missing == ["nvidia-smi"]
    assert not result.clean
    assert aptlock.HostPackages.from_dict(result.as_dict()) == result
    assert aptlock.compare_installed(lock, {"base-files:amd64": "12.4+deb12u15"}).clean


def test_a_hosts_roots_follow_its_groups_and_kernel_flavour() -> None:
    from disposable.packages import lockinputs

    inputs = lockinputs.load()
    local = inputs.roots_for_groups(["inference", "env_local"], "amd64")
    assert "linux-image-amd64" in local and "linux-image-cloud-amd64" not in local
    assert "nvidia-kernel-dkms" in local and "ca-certificates" in local
    gce = inputs.roots_for_groups(["inference"], "cloud-amd64")
    assert "linux-headers-cloud-amd64" in gce and "linux-headers-amd64" not in gce
    assert "nvidia-kernel-dkms" not in inputs.roots_for_groups(["canary"], "amd64")


# -- resolution and the modes, against an archive that moves ----------------------------
MINBASE = [
    FakePackage("base-req", "1.0", priority="required"),
    FakePackage("apt", "2.6", depends="libapt", priority="important"),
    FakePackage("libapt", "2.6"),
    FakePackage("usr-is-merged", "37"),
    FakePackage("img-tool", "1.0", depends="libimg (>= 1.0)"),
    FakePackage("libimg", "1.1"),
]
DRIVER_535 = FakePackage("drv", "535.1-1", depends="drv-support (= 535.1-1)")
DRIVER_SUPPORT_535 = FakePackage("drv-support", "535.1-1")
DRIVER_550 = FakePackage("drv", "550.1-1")
TOOL_1 = FakePackage("site-tool", "1.0-1")
TOOL_2 = FakePackage("site-tool", "1.1-1")


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    """An archive offering the minbase, driver 535 and 550, site-tool 1.0; a lock directory
    whose inputs name only that archive; an empty package store; private caches."""
    monkeypatch.setenv("DML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DML_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DML_APT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("DML_APT_LOCK_DIR", str(tmp_path / "locks"))
    fake = FakeArchive(tmp_path / "archive")
    fake.publish([*MINBASE, DRIVER_535, DRIVER_SUPPORT_535, DRIVER_550, TOOL_1])
    write_inputs(tmp_path / "locks", fake, series="535.*")
    return fake


def write_inputs(directory: Path, fake: FakeArchive, series: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "debian-12.in.yml").write_text(
        "release: bookworm\narchitecture: amd64\nsources:\n"
        + fake.apt_source_yaml()
        + f"series:\n  - name: driver\n    pin: [drv, drv-support]\n    enforce: [drv]\n    version: '{series}'\n"
        + "image_includes: [img-tool]\nprofiles:\n  gpu:\n    groups: [inference]\n    packages: [drv]\n"
        + "site_packages: [site-tool]\n"
    )


def test_lock_resolves_the_newest_version_inside_the_series(archive: FakeArchive) -> None:
    old, new, moves = supply.regenerate()
    assert old is None and moves == []
    versions = new.versions()
    assert versions["drv"] == "535.1-1", "550 is newer but outside the 535 series"
    assert versions["drv-support"] == "535.1-1" and versions["site-tool"] == "1.0-1"
    image = {e.name for e in new.subset("image")}
    assert image == {"base-req", "apt", "libapt", "usr-is-merged", "img-tool", "libimg"}
    assert {e.name for e in new.subset("hosts")} == {"drv", "drv-support", "site-tool"}
    assert all(e.suite == "fixture" for e in new.entries)
    # Nothing moved: the file is left alone.
    before = supply.committed_lock().render()
    assert supply.regenerate()[2] == [] and supply.committed_lock().render() == before


def test_lock_fails_when_a_series_has_no_version(archive: FakeArchive, tmp_path: Path) -> None:
    write_inputs(tmp_path / "locks", archive, series="470.*")
    with pytest.raises(DisposableError) as error:
        supply.regenerate()
    assert "drv: no version in the series 470.*" in str(error.value)


def test_frozen_and_default_modes_when_the_archive_moves(
    archive: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supply.regenerate()
    committed = supply.committed_lock()
    first = supply.prepare(frozen=True)
    assert not first.stale and PackageStore().published(committed)
    snapshots = PackageStore().aptly("snapshot", "list", "-raw").stdout.split()
    assert snapshots == [committed.prefix], "one snapshot per lock, no leftovers"

    # Debian publishes site-tool 1.1-1 and drops 1.0-1.
    archive.publish([*MINBASE, DRIVER_535, DRIVER_SUPPORT_535, DRIVER_550, TOOL_2])
    # The store keeps what it fetched: frozen still works.
    assert supply.prepare(frozen=True).lock.hash == committed.hash

    # A new machine (empty store): frozen fails before anything, naming package, version, command.
    store_dir = tmp_path / "store-new-machine"
    monkeypatch.setenv("DML_APT_STORE_DIR", str(store_dir))
    with pytest.raises(DisposableError) as error:
        supply.prepare(frozen=True)
    message = str(error.value)
    assert "site-tool 1.0-1 (all, from fixture)" in message and "invoke lock --apt" in message
    assert "drv" not in message.split("\n  -> ")[0].split(":", 1)[1], "only the vanished package is named"
    assert not list(store_dir.glob("public/lock-*")), "nothing was published"

    # Default mode: re-resolves only what vanished, says so, and the run is LOCK STALE.
    stale = supply.prepare(frozen=False)
    assert stale.stale
    assert [m.describe() for m in stale.moves] == ["site-tool: 1.0-1 -> 1.1-1 (not a security update, fixture)"]
    assert stale.lock.versions()["drv"] == "535.1-1"
    assert stale.record()["stale"] is True and stale.record()["moved"] == [stale.moves[0].describe()]
    assert supply.override_path(committed).exists()
    assert supply.effective().lock.hash == stale.lock.hash, "later commands use the override"

    # Adopting: `invoke lock --apt` moves the committed lock; then frozen passes again.
    _, adopted, moves = supply.regenerate()
    assert [m.describe() for m in moves] == ["site-tool: 1.0-1 -> 1.1-1 (not a security update, fixture)"]
    frozen = supply.prepare(frozen=True)
    assert not frozen.stale and frozen.lock.hash == adopted.hash


def test_store_refuses_a_package_whose_bytes_differ_from_the_lock(archive: FakeArchive) -> None:
    supply.regenerate()
    path = supply.lockinputs.lock_path()
    lock = aptlock.load(path)
    tampered = [e if e.name != "site-tool" else LockEntry(e.name, e.version, e.architecture, SHA_A, e.suite, e.set)
                for e in lock.entries]  # fmt: skip
    aptlock.write(path, AptLock(tuple(tampered)))
    with pytest.raises(DisposableError) as error:
        supply.prepare(frozen=True)
    assert "another sha256 than the lock: site-tool 1.0-1" in str(error.value)


def test_store_refuses_to_publish_other_bytes_under_a_locked_version(archive: FakeArchive) -> None:
    """The store already holds site-tool 1.0-1; a lock naming another sha256 for it is refused."""
    supply.regenerate()
    supply.prepare(frozen=True)
    path = supply.lockinputs.lock_path()
    lock = aptlock.load(path)
    tampered = [e if e.name != "site-tool" else LockEntry(e.name, e.version, e.architecture, SHA_B, e.suite, e.set)
                for e in lock.entries]  # fmt: skip
    aptlock.write(path, AptLock(tuple(tampered)))
    with pytest.raises(DisposableError) as error:
        supply.prepare(frozen=True)
    assert "holds other bytes than the lock for: site-tool 1.0-1 all" in str(error.value)
