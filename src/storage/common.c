/*
 * What both storage drivers share: the name checks that keep user input
 * safe in paths and zfs argv, and the life cycle of struct storage.
 */
#include "driver.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void storage_release(struct storage *st)
{
	free(st->root);
	free(st->pool);
	free(st->dataset);
	st->root = st->pool = st->dataset = NULL;
}

void storage_snapshots_free(struct storage_snapshot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].label);
	free(s);
}

char *storage_ctr_dir(const struct storage *st, const char *name)
{
	return xasprintf("%s/containers/%s", st->root, name);
}

int storage_check_name(const char *what, const char *name, struct clbsd_err *err)
{
	if (name && valid_name(name))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"%s name \"%s\" is not a DNS label ([a-z0-9-], at most 63)", what,
				name ? name : "(null)");
}

int storage_check_label(const char *label, struct clbsd_err *err)
{
	size_t n = label ? strlen(label) : 0;
	bool ok = n > 0 && n <= 64;
	for (size_t i = 0; ok && i < n; i++) {
		char c = label[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		ok = alnum || (i > 0 && strchr("_.:-", c) != NULL);
	}
	if (ok)
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"snapshot label \"%s\" is not valid: expected a letter or digit, "
				"then letters, digits, '_', '.', ':' or '-' (64 at most)",
				label ? label : "(null)");
}

int storage_check_image_id(const char *id, struct clbsd_err *err)
{
	size_t n = id ? strlen(id) : 0;
	bool ok = n > 0 && n <= 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9');
	if (ok)
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"image id \"%s\" is not valid: expected [a-z0-9], 64 at most",
				id ? id : "(null)");
}
