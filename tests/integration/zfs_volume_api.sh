#!/bin/bash
# volume_api.sh on zfs storage: a named volume from the API is a dataset.
VOLUME_API_ZFS=1
# shellcheck source=tests/integration/volume_api.sh
. "$(dirname "$0")/volume_api.sh"
