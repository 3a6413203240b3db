/*
 * Which of a container's snapshots travel with an export (--snapshots,
 * docs/storage.md "Exports with snapshots"), and in which order each
 * dataset sends them. Pure: the driver lists the snapshots, this decides.
 */
#include "storage.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

/* The labels of spec, one per comma; -EINVAL (err set) for an empty or invalid one. */
static int spec_labels(const char *spec, struct strv *out, struct clbsd_err *err)
{
	const char *p = spec;
	for (;;) {
		size_t n = strcspn(p, ",");
		autofree char *l = xstrndup(p, n);
		if (storage_check_label(l, err) < 0) {
			strv_release(out);
			return clbsd_err_prefix(err, "--snapshots \"%.100s\"", spec);
		}
		bool dup = false;
		for (size_t i = 0; i < out->n && !dup; i++)
			dup = strcmp(out->v[i], l) == 0;
		if (!dup)
			strv_push(out, l);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

int storage_snaps_check(const char *spec, struct clbsd_err *err)
{
	if (!spec || !strcmp(spec, "none") || !strcmp(spec, "all"))
		return 0;
	struct strv v = STRV_INIT;
	int r = spec_labels(spec, &v, err);
	strv_release(&v);
	return r;
}

bool storage_snaps_none(const char *spec)
{
	return !spec || !*spec || strcmp(spec, "none") == 0;
}

int storage_snaps_select(const char *spec, const struct storage_snapshot *have, size_t n,
			 const char *label, struct strv *out, struct clbsd_err *err)
{
	if (!*spec)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"--snapshots: want none, all or LABEL[,LABEL...]");
	if (storage_snaps_none(spec))
		return 0;
	struct strv want = STRV_INIT;
	bool all = strcmp(spec, "all") == 0;
	if (!all && spec_labels(spec, &want, err) < 0)
		return -err->code;
	int r = 0;
	for (size_t i = 0; r == 0 && i < want.n; i++) {
		bool found = strcmp(want.v[i], label) == 0;
		for (size_t k = 0; k < n && !found; k++)
			found = strcmp(have[k].label, want.v[i]) == 0;
		if (!found)
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "--snapshots: no snapshot %s (clbsd snapshot ls)",
					     want.v[i]);
	}
	for (size_t k = 0; r == 0 && k < n; k++) {
		bool pick = all;
		for (size_t i = 0; i < want.n && !pick; i++)
			pick = strcmp(want.v[i], have[k].label) == 0;
		if (pick && strcmp(have[k].label, label) != 0)
			strv_push(out, have[k].label);
	}
	strv_release(&want);
	if (r < 0)
		strv_release(out);
	return r;
}

void storage_snaps_chain(char *const *names, size_t n, char *const *chosen, const char *label,
			 struct strv *out)
{
	for (size_t i = 0; i < n && strcmp(names[i], label) != 0; i++) {
		bool pick = false;
		for (size_t k = 0; chosen && chosen[k] && !pick; k++)
			pick = strcmp(chosen[k], names[i]) == 0;
		if (pick)
			strv_push(out, names[i]);
	}
}
