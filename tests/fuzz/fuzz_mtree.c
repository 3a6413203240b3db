/*
 * libFuzzer target: an integrity manifest (mtree text) read back with
 * libarchive's mtree reader into an entry set, and compared with itself and
 * with an empty set (src/integrity/).
 */
#include "fuzz.h"
#include "integrity/integrity.h"
#include "util/archive_lib.h"

#include <stdint.h>
#include <stdlib.h>

/* Held for the whole run: a load and unload per input would be most of the time. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct clbsd_err err;
	if (archive_lib_acquire(&err) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mtree_set s;
	struct clbsd_err err;
	if (mtree_parse((const char *)data, size, &s, &err) < 0)
		return 0;
	struct mtree_set none = {0};
	struct drift *d;
	char *ex[] = {"/var/log", NULL}, *in[] = {"/var/log/audit", NULL};
	size_t n = integrity_diff(&s, &s, ex, in, &d);
	if (n != 0)
		abort(); /* a manifest never differs from itself */
	free(d);
	n = integrity_diff(&none, &s, NULL, NULL, &d);
	json_t *j = integrity_report_json(d, n, 10);
	json_decref(j);
	free(d);
	mtree_set_release(&s);
	return 0;
}
