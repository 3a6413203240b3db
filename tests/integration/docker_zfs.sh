#!/bin/bash
# docker_store.sh on a zfs-fuse pool: the docker containers' volumes are
# datasets, snapshots and clones are zfs's, and migrate sends the bulk while
# the container runs (two-phase), as it does for native containers.
export ZFS_VARIANT=1
. "$(dirname "$0")/docker_store.sh"
