/*
 * The build plan: one step per instruction with the cache key that names
 * its result. Pure: the file system is reached only through the callbacks
 * (the base image ids and the context hash). docs/cblockfile.md explains
 * what goes into a key and why.
 */
#include "image/cblockfile.h"
#include "util/hash.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bumped when the meaning of a key changes, so old layers stop matching. */
#define KEY_VERSION "clbsd-build-v1"

void cbf_plan_release(struct cbf_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->steps[i].canon);
	free(p->steps);
	free(p->stage_base);
	free(p->stage_key);
	memset(p, 0, sizeof(*p));
}

static void add_line(struct hash_stream *h, const char *tag, const char *val)
{
	hash_stream_add(h, tag, strlen(tag));
	hash_stream_add(h, " ", 1);
	hash_stream_add(h, val, strlen(val));
	hash_stream_add(h, "\n", 1);
}

/* The ARGs in scope at instruction `upto` of a stage, with their values. */
static void add_args(struct hash_stream *h, const struct cbf_stage *st, size_t upto)
{
	for (size_t i = 0; i < upto; i++) {
		const struct cbf_instr *a = &st->instrs[i];
		if (a->kind != CBF_ARG)
			continue;
		for (size_t k = 0; k < a->nkv; k++) {
			if (!a->kv[k].value)
				continue; /* unset: not in the environment */
			autofree char *line = xasprintf("%s=%s", a->kv[k].key, a->kv[k].value);
			add_line(h, "arg", line);
		}
	}
}

int cbf_plan_build(const struct cbf_file *f, const struct cbf_plan_ops *ops, struct cbf_plan *out,
		   struct clbsd_err *err)
{
	struct cbf_plan p = {0};
	p.nstages = f->nstages;
	p.stage_base = xcalloc(f->nstages, sizeof(*p.stage_base));
	p.stage_key = xcalloc(f->nstages, sizeof(*p.stage_key));
	size_t total = 0;
	for (size_t s = 0; s < f->nstages; s++)
		total += f->stages[s].n;
	p.steps = xcalloc(total ? total : 1, sizeof(*p.steps));

	for (size_t s = 0; s < f->nstages; s++) {
		const struct cbf_stage *st = &f->stages[s];
		char *base = p.stage_base[s];
		switch (st->base_kind) {
		case CBF_BASE_SCRATCH:
			hash_sha256_hex("scratch", 7, base);
			break;
		case CBF_BASE_STAGE:
			if (st->base_stage < 0 || (size_t)st->base_stage >= s) {
				clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						 "%s:%d:%d: FROM %s: not an earlier stage", f->file,
						 st->line, st->col, st->base);
				goto fail;
			}
			memcpy(base, p.stage_key[st->base_stage], 65);
			break;
		case CBF_BASE_IMAGE:
			if (!ops || !ops->image_id) {
				clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
						 "%s:%d:%d: FROM %s: no way to resolve images",
						 f->file, st->line, st->col, st->base);
				goto fail;
			}
			if (ops->image_id(st->base, base, ops->ctx, err) < 0) {
				clbsd_err_prefix(err, "%s:%d:%d: FROM %s", f->file, st->line,
						 st->col, st->base);
				goto fail;
			}
			base[64] = '\0';
			break;
		}
		char parent[65];
		memcpy(parent, base, 65);
		for (size_t i = 0; i < st->n; i++) {
			const struct cbf_instr *in = &st->instrs[i];
			struct cbf_step *step = &p.steps[p.n];
			step->stage = s;
			step->index = i;
			step->instr = in;
			step->canon = cbf_instr_canon(in);
			p.n++;
			struct hash_stream *h = hash_sha256_begin();
			hash_stream_add(h, KEY_VERSION "\n", strlen(KEY_VERSION) + 1);
			add_line(h, "parent", parent);
			add_line(h, "step", step->canon);
			if (in->kind == CBF_COPY && in->from_stage >= 0) {
				add_line(h, "from", p.stage_key[in->from_stage]);
			} else if (in->kind == CBF_COPY || in->kind == CBF_ADD) {
				char src[65];
				if (!ops || !ops->source_hash) {
					hash_stream_end(h, step->key);
					clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
							 "%s:%d:%d: %s: no way to hash sources",
							 f->file, in->line, in->col,
							 cbf_kind_name(in->kind));
					goto fail;
				}
				if (ops->source_hash(in, src, ops->ctx, err) < 0) {
					hash_stream_end(h, step->key);
					clbsd_err_prefix(err, "%s:%d:%d: %s", f->file, in->line,
							 in->col, cbf_kind_name(in->kind));
					goto fail;
				}
				src[64] = '\0';
				add_line(h, "sources", src);
			} else if (in->kind == CBF_RUN) {
				add_args(h, st, i);
			}
			hash_stream_end(h, step->key);
			memcpy(parent, step->key, 65);
		}
		memcpy(p.stage_key[s], parent, 65);
	}
	*out = p;
	return 0;
fail:
	cbf_plan_release(&p);
	return -err->code;
}

bool cbf_kind_changes_files(enum cbf_kind kind)
{
	return kind == CBF_RUN || kind == CBF_COPY || kind == CBF_ADD || kind == CBF_WORKDIR ||
	       kind == CBF_ROOTPIVOT;
}

void cbf_stages_needed(const struct cbf_file *f, bool *needed)
{
	for (size_t s = 0; s < f->nstages; s++)
		needed[s] = false;
	if (f->nstages == 0)
		return;
	needed[f->nstages - 1] = true;
	/* References only point at earlier stages, so one pass backwards is enough. */
	for (size_t s = f->nstages; s-- > 0;) {
		if (!needed[s])
			continue;
		const struct cbf_stage *st = &f->stages[s];
		if (st->base_kind == CBF_BASE_STAGE && st->base_stage >= 0)
			needed[st->base_stage] = true;
		for (size_t i = 0; i < st->n; i++)
			if (st->instrs[i].from_stage >= 0)
				needed[st->instrs[i].from_stage] = true;
	}
}
