"""The local cloud: the LXD daemon, the host image, golden images, Molecule hosts, the janitor."""
