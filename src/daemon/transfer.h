/*
 * Export and import of a container as one archive file: what transfer.c
 * (import, recovery) and transfer_export.c (export) share.
 *
 * Layout: a 4096-byte header, then the storage driver's stream of a snapshot
 * taken for the export (src/storage/storage.h send/receive), to the end of
 * the file. A docker container's archive exported --with-image holds its
 * image (`docker save`) between the two, its length and XXH3-128 in the
 * header's "image" ("bytes", "xxh3"): the stream still ends the file, where
 * the zfs driver's raw streams keep their footer (docker_store.c). The
 * header is one JSON line padded with spaces (and a newline at its last
 * byte), whose first member is always at the same place:
 *   {"header_xxh3":HEX,"format":"clbsd-export","version":2,
 *    "driver":"dir"|"zfs","root":..,"name":..,"container":{container.json},
 *    "image":{"ref","id"},"label":..,"from":..|absent,"created_at":..,
 *    "stream_bytes":N,"stream_xxh3":HEX | "stream_check":DRIVER}
 * header_xxh3 is the XXH3-128 of the 4096 bytes with its own 32 digits
 * read as "0"; stream_xxh3 that of the stream (drivers whose streams check
 * themselves, zfs, have stream_check instead), so one checksum chain
 * covers every byte, and the header stays one JSON document. It finds
 * damage, not intent: anyone can edit a header and compute both again, so
 * import trusts nothing in it. Version 1 (no header checksum, and in older
 * files "stream_sha256") is still read, through the same checks.
 *
 * Import rebuilds the container's record from a create request made of
 * the archived record and checks it with exactly what POST /v1/containers
 * checks (ctr_check_create): fields a create cannot set are dropped, and
 * the command, environment and user are resolved again against the image.
 * Named volumes (sources under the exporting daemon's <root>/volumes/NAME/)
 * become the new container's own; any other volume is a bind of a host
 * path, and those and host networking are refused unless the operator
 * allows host access (`clbsd import --allow-host-access`), after the
 * refusal listed them.
 *
 * The header is written last (pwrite at offset 0) once the stream and its
 * checksum are known, into a temporary file (FILE.clbsd-tmp-HEX) renamed
 * into place: a file at the requested path is always complete. A marker
 * under <root>/transfer/ names the temporary file and the export's
 * snapshot while it runs, so a daemon killed meanwhile removes both at its
 * next start (transfer_cleanup_stale). The file is not fsynced (neither
 * `zfs send > file`, tar nor `docker save` do; waiting for the disk halved
 * the export's speed): a power failure right after an export can leave it
 * damaged, which the checksums show at import. Import checks the format,
 * the driver, the checksums, the record and that the image is here before
 * anything is made, and removes whatever it made when a later step fails.
 *
 * Incremental exports (zfs): an export may keep its snapshot under a given
 * label (`label`, kept), and may hold only what changed since an earlier
 * kept snapshot (`from`). Importing one updates the existing, stopped
 * container that has that earlier snapshot, in place: migrate sends the
 * bulk while the container runs, then only the last changes after it stops.
 */
#ifndef CLBSD_DAEMON_TRANSFER_H
#define CLBSD_DAEMON_TRANSFER_H

#include "daemon.h"
#include "util/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HEADER_SIZE 4096
/* Version 2 opens with HEADER_SUM_TAG, then the header's 32 hex digits and '"'. */
#define HEADER_SUM_TAG "{\"header_xxh3\":\""
#define HEADER_SUM_OFF (sizeof(HEADER_SUM_TAG) - 1)
/* The temporary file of an export: FILE + this + 8 hex digits. */
#define TMP_TAG ".clbsd-tmp-"

struct xfer_job {
	struct daemon *d;
	struct container *c; /* export: the source */
	char *name;	     /* import: the new container's name */
	char *path;
	char *label;
	char *from;	   /* export: incremental since this kept snapshot */
	bool keep;	   /* export: keep the snapshot (a later export's from) */
	bool at;	   /* export: the snapshot exists (host export): neither take nor drop it */
	char *snap_spec;   /* export: which older snapshots travel (storage_snaps_select) */
	struct strv snaps; /* export: those chosen, oldest first */
	bool update;	   /* import: an incremental into the existing container */
	char *header;	   /* export: what the loop knew of the container */
	char *marker;	   /* export: <root>/transfer/HEX.json while it runs */
	char *tmp;	   /* export: the temporary file */
	json_t *result;
	/* a docker container: dockerd for its image; import: the image name to create with */
	struct dk_client *dk;
	bool docker;
	bool with_image;     /* export: carry the image (docker save) before the stream */
	int64_t image_bytes; /* the image's bytes between the header and the stream */
	char *docker_image;
	/* import into a declaration (ctr_import_declared) */
	bool declared;
	char *decl_image; /* docker: the declared image, checked in dockerd against the archive's */
	bool restore_live; /* it recorded the declaration: a failure puts live_before back */
	char *live_before;
	bool pending;		 /* provisional: its marker stays until commit or abort */
	bool receiving;		 /* its receive marker is written (recv_marker) */
	ctr_done_fn fn;		 /* import */
	ctr_export_fn export_fn; /* export */
	void *arg;
	struct clbsd_err err;
	int rc;
	int64_t t0; /* import: when it was asked for (monotonic): its probe's duration */
	/* monotonic ns, for the debug log's times: asked, queued, worker began, stream done */
	int64_t t_asked, t_queued, t_run, t_sent;
};

void transfer_job_free(struct xfer_job *j);
/* The checksum of a version 2 header: its bytes, its own digits read as '0'. */
void transfer_header_sum(const char *block, char hex[33]);

#endif
