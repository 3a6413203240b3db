/*
 * Golden tests of the configuration: for each tests/golden/conf/NAME.conf,
 * a valid file must print exactly NAME.out, and that output must read back
 * and print identically (round trip); an invalid one must give exactly the
 * diagnostics in NAME.err. The file name in positions is "NAME.conf".
 *
 * CLBSD_GOLDEN_UPDATE=1 rewrites the expected files from the current
 * output (review the diff before committing); the test still compares.
 */
#include "core/config.h"
#include "test.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

static const char *dir = "tests/golden/conf";

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int build_text(const char *name, const char *text, struct conf **out, char **diags)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {name, text, strlen(text)};
	int r = conf_build(&src, 1, out, &d);
	*diags = conf_diags_format(&d);
	conf_diags_release(&d);
	return r;
}

static void golden_one(const char *base)
{
	struct clbsd_err err;
	autofree char *name = xasprintf("%s.conf", base);
	autofree char *in_path = xasprintf("%s/%s", dir, name);
	autofree char *text = NULL;
	size_t len;
	if (fs_read_file(in_path, &text, &len, &err) < 0)
		FAILF("%s", err.msg);
	struct conf *c = NULL;
	autofree char *diags = NULL;
	int r = build_text(name, text, &c, &diags);
	autofree char *got = r == 0 ? conf_print(c) : xstrdup(diags);
	autofree char *want_path = xasprintf("%s/%s.%s", dir, base, r == 0 ? "out" : "err");
	autofree char *other_path = xasprintf("%s/%s.%s", dir, base, r == 0 ? "err" : "out");
	if (getenv("CLBSD_GOLDEN_UPDATE")) {
		fs_write_atomic(want_path, got, strlen(got), 0644, &err);
		unlink(other_path);
	}
	autofree char *want = NULL;
	if (fs_read_file(want_path, &want, &len, &err) < 0) {
		conf_free(c);
		FAILF("%s: %s (expected %s; the output was:\n%s)", name, err.msg,
		      r == 0 ? "valid" : "errors", got);
	}
	if (strcmp(got, want) != 0) {
		conf_free(c);
		FAILF("%s differs from %s; got:\n%s", name, want_path, got);
	}
	if (r == 0) {
		/* Round trip: the canonical form reads back to the same canonical form. */
		struct conf *c2 = NULL;
		autofree char *d2 = NULL;
		if (build_text(name, got, &c2, &d2) < 0) {
			conf_free(c);
			FAILF("%s: the canonical form does not read back:\n%s", name, d2);
		}
		autofree char *again = conf_print(c2);
		bool same = strcmp(again, got) == 0;
		/* ... and to the same spec hash for each container. */
		for (size_t i = 0; same && i < c->ncontainers; i++) {
			char h1[65], h2[65];
			ctr_spec_hash(c->containers[i], h1);
			ctr_spec_hash(c2->containers[i], h2);
			same = strcmp(h1, h2) == 0;
		}
		conf_free(c2);
		conf_free(c);
		if (!same)
			FAILF("%s: printing the canonical form again differs:\n%s", name, again);
	}
	printf("ok conf.golden.%s\n", base);
}

int main(void)
{
	test_prog = "conf.golden";
	const char *d = getenv("CLBSD_GOLDEN_DIR");
	if (d)
		dir = d;
	DIR *dh = opendir(dir);
	if (!dh) {
		printf("FAIL conf.golden: cannot open %s: %s\n", dir, strerror(errno));
		return 1;
	}
	struct strv names = STRV_INIT;
	struct dirent *e;
	while ((e = readdir(dh))) {
		size_t n = strlen(e->d_name);
		if (n > 5 && strcmp(e->d_name + n - 5, ".conf") == 0)
			strv_push_owned(&names, xstrndup(e->d_name, n - 5));
	}
	closedir(dh);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	if (names.n == 0) {
		printf("FAIL conf.golden: no golden files in %s\n", dir);
		return 1;
	}
	for (size_t i = 0; i < names.n; i++) {
		test_case_failed = 0;
		golden_one(names.v[i]);
		if (test_case_failed)
			test_failed_cases++;
	}
	strv_release(&names);
	return test_failed_cases ? 1 : 0;
}
