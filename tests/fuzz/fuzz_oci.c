/*
 * libFuzzer target: the OCI parsers that take input from archives and
 * registries. The input is split at its first two newlines: a registry
 * reference, a layer member name, and JSON (an index or manifest list, and
 * an image config). Beyond not crashing, a member name that is accepted
 * must never lead outside the rootfs: no leading '/', no "." or ".."
 * component.
 */
#include "fuzz.h"
#include "image/oci.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_inside(const char *p)
{
	if (p[0] == '/')
		abort();
	for (const char *c = p; *c;) {
		size_t l = strcspn(c, "/");
		if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			abort();
		c += l;
		if (*c == '/')
			c++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	char *name = strchr(s, '\n');
	char *json = NULL;
	if (name) {
		*name++ = '\0';
		json = strchr(name, '\n');
		if (json)
			*json++ = '\0';
	}
	struct oci_ref r;
	struct clbsd_err err;
	if (oci_ref_parse(s, &r, &err) == 0) {
		if (!r.host || !r.repo || !r.name || (!r.tag && !r.digest))
			abort();
		if (r.digest && !oci_digest_valid(r.digest))
			abort();
		oci_ref_release(&r);
	} else if (!*err.msg) {
		abort(); /* every refusal says why */
	}
	(void)oci_host_is_loopback(s);
	if (name) {
		char *p = NULL;
		enum oci_member k = oci_member_classify(name, &p);
		if (k == OCI_MEMBER_FILE || k == OCI_MEMBER_WHITEOUT ||
		    (k == OCI_MEMBER_OPAQUE && *p))
			check_inside(p);
		free(p);
	}
	if (json) {
		json_t *j = json_loads(json, 0, NULL);
		if (j) {
			json_t *d = oci_index_pick(j, "amd64");
			if (d && !json_is_object(d))
				abort();
			struct image_config cfg;
			if (oci_config_parse(j, &cfg, &err) == 0) {
				if (!cfg.entrypoint || !cfg.cmd || !cfg.env || !cfg.workdir ||
				    !cfg.user)
					abort();
				image_config_release(&cfg);
			}
			json_decref(j);
		}
	}
	free(s);
	return 0;
}
