/*
 * :backup, read and printed (spec.h struct ctr_backup): the same reader
 * serves a container's key and the host's default, so both say the same
 * things with the same file:line:col errors.
 */
#include "conf/value_check.h"
#include "core/spec.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_EVERY (86400LL * 1000000000)
#define MIN_EVERY     (60LL * 1000000000)

void ctr_backup_release(struct ctr_backup *b)
{
	free(b->to);
	*b = (struct ctr_backup){0};
}

void ctr_backup_copy(struct ctr_backup *dst, const struct ctr_backup *src)
{
	*dst = *src;
	dst->to = src->to ? xstrdup(src->to) : NULL;
}

static const char *const backup_keys[] = {"every", "keep", "to", NULL};
static const char *const keep_keys[] = {"daily", "weekly", "monthly", NULL};

struct bparse {
	struct ctr_backup *b;
	const char *key;
	bool bad;
};

static void keep_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct bparse *bp = obj;
	long long n;
	autofree char *what = xasprintf("%s :keep :%s", bp->key, keep_keys[key]);
	if (!chk_int(c, what, v, 0, 10000, &n)) {
		bp->bad = true;
		return;
	}
	int *slot[] = {&bp->b->keep.daily, &bp->b->keep.weekly, &bp->b->keep.monthly};
	*slot[key] = (int)n;
}

static void backup_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		       const struct sexp *k)
{
	struct bparse *bp = obj;
	autofree char *what = xasprintf("%s :%s", bp->key, backup_keys[key]);
	switch (key) {
	case 0:
		if (!chk_duration(c, what, v, &bp->b->every_ns)) {
			bp->bad = true;
		} else if (bp->b->every_ns < MIN_EVERY) {
			verr(c, v, "%s: expected at least 1m", what);
			bp->bad = true;
		}
		break;
	case 1:
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, what, v, "tiers like (:daily 7 :weekly 4 :monthly 6)");
			bp->bad = true;
			return;
		}
		bp->b->keep = (struct backup_keep){0};
		walk_plist(c, v, 0, keep_keys, what, keep_key, bp);
		break;
	case 2: {
		char *to = NULL;
		if (!chk_string(c, what, v, false, &to)) {
			bp->bad = true;
			break;
		}
		struct backup_dest d;
		char why[160];
		if (!backup_dest_parse(to, &d, why, sizeof(why))) {
			vexpect(c, what, v, why);
			bp->bad = true;
			free(to);
			break;
		}
		backup_dest_release(&d);
		free(bp->b->to);
		bp->b->to = to;
		break;
	}
	}
}

bool ctr_backup_read(struct vctx *c, const char *key, const struct sexp *v, struct ctr_backup *out)
{
	struct ctr_backup b = {.set = true};
	if (is_sym(v, "nil") || (v->type == SEXP_LIST && v->n == 0 && !v->tail)) {
		b.off = true;
		ctr_backup_release(out);
		*out = b;
		return true;
	}
	if (v->type != SEXP_LIST || v->tail) {
		vexpect(c, key, v,
			"a schedule like (:every \"1d\" :keep (:daily 7 :weekly 4 :monthly 6) :to "
			"\"/srv/backup\"), or nil");
		return false;
	}
	b.every_ns = DEFAULT_EVERY;
	b.keep = (struct backup_keep){7, 4, 6};
	struct bparse bp = {.b = &b, .key = key};
	walk_plist(c, v, 0, backup_keys, key, backup_key, &bp);
	if (!bp.bad && !b.to) {
		verr(c, v,
		     "%s: expected :to, where the backups go (ssh://host, unix:/socket or a "
		     "directory)",
		     key);
		bp.bad = true;
	}
	if (!bp.bad && b.keep.daily + b.keep.weekly + b.keep.monthly == 0) {
		verr(c, v, "%s :keep: expected at least one backup kept in some tier", key);
		bp.bad = true;
	}
	if (bp.bad) {
		ctr_backup_release(&b);
		return false;
	}
	ctr_backup_release(out);
	*out = b;
	return true;
}

bool ctr_backup_print(struct buf *b, const struct ctr_backup *bk)
{
	if (!bk->set)
		return false;
	if (bk->off) {
		buf_adds(b, "nil");
		return true;
	}
	autofree char *every = conf_duration_str(bk->every_ns);
	buf_adds(b, "(:every ");
	sexp_print_string(b, every);
	buf_addf(b, " :keep (:daily %d :weekly %d :monthly %d) :to ", bk->keep.daily,
		 bk->keep.weekly, bk->keep.monthly);
	sexp_print_string(b, bk->to);
	buf_adds(b, ")");
	return true;
}
