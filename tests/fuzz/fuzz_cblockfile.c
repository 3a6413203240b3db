/*
 * libFuzzer target: the Cblockfile reader, substitution and the canonical
 * text. A rejection always names "fuzz:LINE:COL: " with a position inside
 * the input; what reads keeps the invariants of cblockfile.h, expands with
 * build arguments, every instruction has a canonical line, and the last
 * stage's image config survives a JSON round trip.
 */
#include "fuzz.h"
#include "image/cblockfile.h"
#include "image/image.h"
#include "util/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *const *base_env(const char *ref, void *ctx)
{
	static char *const env[] = {"PATH=/bin", "A=1", NULL};
	return env;
}

static void check_position(const char *msg, const uint8_t *data, size_t size)
{
	int line, col, n = 0;
	if (sscanf(msg, "fuzz:%d:%d: %n", &line, &col, &n) != 2 || n == 0)
		abort();
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (line < 1 || (size_t)line > lines || col < 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cbf_file *f = NULL;
	struct clbsd_err err;
	if (cbf_read("fuzz", (const char *)data, size, &f, &err) < 0) {
		if (size <= CBF_MAX_SIZE)
			check_position(err.msg, data, size);
		return 0;
	}
	if (f->nstages == 0)
		abort();
	for (size_t s = 0; s < f->nstages; s++) {
		const struct cbf_stage *st = &f->stages[s];
		if (st->base_kind == CBF_BASE_STAGE &&
		    (st->base_stage < 0 || (size_t)st->base_stage >= s))
			abort();
		for (size_t i = 0; i < st->n; i++) {
			const struct cbf_instr *in = &st->instrs[i];
			if (in->from && (in->from_stage < 0 || (size_t)in->from_stage >= s))
				abort();
			free(cbf_instr_canon(in));
		}
	}
	char *args[] = {"A=x", "B=", "TAG=1.0", "V=${A}", NULL};
	struct cbf_expand_opts o = {.build_args = args, .base_env = base_env};
	for (int round = 0; round < 2; round++) {
		if (cbf_expand(f, &o, &err) < 0) {
			check_position(err.msg, data, size);
			break;
		}
		for (size_t s = 0; s < f->nstages; s++)
			for (size_t i = 0; i < f->stages[s].n; i++)
				free(cbf_instr_canon(&f->stages[s].instrs[i]));
		struct image_config cfg, back;
		if (cbf_image_config(f, f->nstages - 1, NULL, &cfg, &err) < 0)
			abort();
		json_t *j = image_config_to_json(&cfg);
		/* Invalid UTF-8 cannot be a JSON string; anything else must come back. */
		if (j && image_config_from_json(j, &back, &err) == 0) {
			json_t *j2 = image_config_to_json(&back);
			if (!json_equal(j, j2))
				abort();
			json_decref(j2);
			image_config_release(&back);
		}
		json_decref(j);
		image_config_release(&cfg);
	}
	cbf_file_free(f);
	return 0;
}
