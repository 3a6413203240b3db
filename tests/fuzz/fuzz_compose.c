/*
 * libFuzzer target: import-compose's translator (YAML, interpolation, every
 * service key). Whatever the input: no crash; every warning line starts
 * with "fuzz.yml:LINE:COL: " with a position inside the input (or the
 * check's report, which must never appear: it means a translation that
 * clbsdd -n refuses); a usable result reads back with conf_build.
 */
#include "compose/compose.h"
#include "core/config.h"
#include "fuzz.h"
#include "util/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_env(const char *name, void *arg)
{
	return !strcmp(name, "TAG") ? "1" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compose_opts o = {.file = "fuzz.yml",
				 .text = (const char *)data,
				 .len = size,
				 .dir = "/nonexistent-clbsd-fuzz",
				 .path_base = "/srv",
				 .project = "fuzz",
				 .kind = COMPOSE_KIND_DOCKER,
				 .getenv = fuzz_env};
	struct compose_result r;
	int rc = compose_translate(&o, &r);
	/* YAML breaks lines at \n, \r, NEL and U+2028/9 (0xe2 0x80 0xa8/9): a bound. */
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xe2;
	for (const char *l = r.warnings; *l;) {
		int line, col, n = 0;
		if (sscanf(l, "fuzz.yml:%d:%d: %n", &line, &col, &n) != 2 || n == 0 || line < 1 ||
		    (size_t)line > lines + 1 || col < 1)
			abort();
		const char *e = strchr(l, '\n');
		if (!e)
			abort();
		l = e + 1;
	}
	if (rc == 0) {
		struct conf_diags d = CONF_DIAGS_INIT;
		struct conf_source src = {"fuzz", r.text, strlen(r.text)};
		struct conf *c = NULL;
		if (conf_build(&src, 1, &c, &d) != 0)
			abort();
		conf_free(c);
		conf_diags_release(&d);
	}
	compose_result_release(&r);
	return 0;
}
