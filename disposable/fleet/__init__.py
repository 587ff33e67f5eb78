"""The fleet: inference hosts behind the front door (HAProxy), rebuilt one at a time and
scaled under traffic without failed requests."""
