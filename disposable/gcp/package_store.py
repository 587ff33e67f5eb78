"""Publishing the package store where GCP hosts reach it: a private GCS bucket that holds the
store's published repositories (each signed by the store's key), read by the hosts'
service account. The base role copies the lock's repository from it (base_apt_store_bucket)
and apt reads it from the host's disk, still checking the store's signature.

    .venv/bin/python -m disposable.gcp.package_store PROJECT BUCKET [LOCATION] [SERVICE_ACCOUNT]

prints the gcloud commands (create the bucket once, grant read, upload the lock in use).
Nothing here can reach GCP from this project's CI; docs/package-store.md walks through it.
"""

from __future__ import annotations

import shlex
import sys

from disposable.packages import supply


def commands(project: str, bucket: str, location: str = "us-central1", service_account: str = "") -> list[str]:
    current = supply.effective()
    public = current.store.public_dir
    prefix = current.lock.prefix
    q = shlex.quote
    lines = [
        "# once: a private bucket, uniform access, versioned (a published lock is never overwritten in place)",
        f"gcloud storage buckets create gs://{bucket} --project={q(project)} --location={q(location)} "
        "--uniform-bucket-level-access --public-access-prevention",
        f"gcloud storage buckets update gs://{bucket} --versioning",
    ]
    if service_account:
        lines += [
            "# the hosts' service account may read it, nothing more",
            f"gcloud storage buckets add-iam-policy-binding gs://{bucket} "
            f"--member=serviceAccount:{q(service_account)} --role=roles/storage.objectViewer",
        ]
    lines += [
        f"# the apt lock in use ({current.lock.short_hash}, {current.lock.size_summary()}) and the store's public key",
        f"gcloud storage rsync --recursive {q(str(public / prefix))} gs://{bucket}/{prefix}",
        f"gcloud storage cp {q(str(current.store.public_key))} gs://{bucket}/dml-store.asc",
        "# then, in inventories/group_vars/env_gcp.yml:",
        "#   base_apt_store_uri: file:/var/lib/dml-store",
        f"#   base_apt_store_bucket: {bucket}",
    ]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(commands(*argv[:4])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
