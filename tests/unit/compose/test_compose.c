/*
 * import-compose's translator (src/compose/) on the compose files of
 * tests/compose/: one per key family and whole stacks people run at home.
 * Each translation is compared with its golden forms (NAME.conf) and its
 * golden warning lines (NAME.err: every line checked, so a key dropped or
 * a warning lost shows), and read back with conf_build, the check of
 * `clbsdd -n`. COMPOSE_GOLDEN_UPDATE=1 rewrites the golden files.
 */
#include "compose/compose.h"
#include "core/config.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>

static const char *test_env(const char *name, void *arg)
{
	static const char *const env[][2] = {
		{"HOME", "/home/user"}, {"TAG", "1.2.3"}, {"EMPTY", ""}, {"MEDIA", "/srv/media"}};
	for (size_t i = 0; i < ARRAY_SIZE(env); i++)
		if (!strcmp(env[i][0], name))
			return env[i][1];
	return NULL;
}

/* The images a store "has", for the auto kind. */
static bool test_native(const char *image, void *arg)
{
	return !strcmp(image, "forge") || !strncmp(image, "redis", 5);
}

static int run(const char *name, enum compose_kind kind, struct compose_result *r)
{
	autofree char *path = xasprintf("tests/compose/%s.yml", name);
	autofree char *file = xasprintf("%s.yml", name);
	autofree char *text = NULL;
	size_t len;
	struct clbsd_err err;
	if (fs_read_file(path, &text, &len, &err) < 0) {
		printf("read %s: %s\n", path, err.msg);
		abort();
	}
	struct compose_opts o = {.file = file,
				 .text = text,
				 .len = len,
				 .dir = "tests/compose",
				 .path_base = "/srv/stack",
				 .project = "stack",
				 .kind = kind,
				 .is_native = test_native,
				 .getenv = test_env};
	return compose_translate(&o, r);
}

/* Compare with (or, with COMPOSE_GOLDEN_UPDATE, write) tests/compose/NAME.EXT. */
static bool golden(const char *name, const char *ext, const char *have, char **diff)
{
	autofree char *path = xasprintf("tests/compose/%s.%s", name, ext);
	struct clbsd_err err;
	if (getenv("COMPOSE_GOLDEN_UPDATE")) {
		fs_replace(path, have, strlen(have), 0644, &err);
		return true;
	}
	autofree char *want = NULL;
	if (fs_read_file(path, &want, NULL, &err) < 0) {
		*diff = xasprintf("%s: %s", path, err.msg);
		return false;
	}
	if (strcmp(want, have) != 0) {
		*diff = xasprintf("%s differs; have:\n%s", path, have);
		return false;
	}
	return true;
}

static const struct {
	const char *name;
	enum compose_kind kind;
} usable[] = {
	{"command", COMPOSE_KIND_DOCKER},	 {"environment", COMPOSE_KIND_DOCKER},
	{"ports", COMPOSE_KIND_DOCKER},		 {"volumes", COMPOSE_KIND_DOCKER},
	{"networks", COMPOSE_KIND_DOCKER},	 {"depends_health", COMPOSE_KIND_DOCKER},
	{"restart_limits", COMPOSE_KIND_DOCKER}, {"security", COMPOSE_KIND_DOCKER},
	{"build", COMPOSE_KIND_DOCKER},		 {"stack_webapp", COMPOSE_KIND_AUTO},
	{"stack_media", COMPOSE_KIND_DOCKER},	 {"stack_native", COMPOSE_KIND_NATIVE},
	{"version2", COMPOSE_KIND_DOCKER},	 {"anchors", COMPOSE_KIND_DOCKER},
};

TEST(fixtures_translate_to_golden_forms)
{
	for (size_t i = 0; i < ARRAY_SIZE(usable); i++) {
		struct compose_result r;
		int rc = run(usable[i].name, usable[i].kind, &r);
		if (rc != 0)
			FAILF("%s: not usable:\n%s", usable[i].name, r.warnings);
		autofree char *d = NULL;
		bool ok = golden(usable[i].name, "conf", r.text, &d) &&
			  golden(usable[i].name, "err", r.warnings, &d);
		/* What clbsdd -n does with it. */
		struct conf_diags diags = CONF_DIAGS_INIT;
		struct conf_source src = {usable[i].name, r.text, strlen(r.text)};
		struct conf *cf = NULL;
		int built = conf_build(&src, 1, &cf, &diags);
		autofree char *dm = conf_diags_format(&diags);
		conf_diags_release(&diags);
		conf_free(cf);
		compose_result_release(&r);
		if (!ok)
			FAILF("%s", d);
		if (built != 0)
			FAILF("%s: clbsdd -n refuses the translation:\n%s", usable[i].name, dm);
	}
}

TEST(unusable_files_exit_1_with_the_reason)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
		{"bad_yaml", "bad_yaml.yml:4:3: YAML: did not find expected key"},
		{"bad_no_services",
		 "bad_no_services.yml:1:1: key services: no services to translate"},
		{"bad_required_var", "bad_required_var.yml:4:12: service db: key image: required "
				     "variable DB_TAG is not "
				     "set: give the database's tag"},
		{"bad_no_image", "no service could be translated"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct compose_result r;
		int rc = run(cases[i].name, COMPOSE_KIND_DOCKER, &r);
		bool found = strstr(r.warnings, cases[i].want) != NULL;
		bool text = r.text != NULL;
		autofree char *w = xstrdup(r.warnings);
		compose_result_release(&r);
		CHECK_INT(rc, -EINVAL);
		CHECK(!text);
		if (!found)
			FAILF("%s: want \"%s\" in:\n%s", cases[i].name, cases[i].want, w);
	}
}

TEST(interpolation)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"a${TAG}b", "a1.2.3b"}, {"$TAG-x", "1.2.3-x"},	   {"$$TAG", "$TAG"},
		{"${NOPE:-def}", "def"}, {"${EMPTY:-def}", "def"}, {"${EMPTY-def}", ""},
		{"${TAG:+alt}", "alt"},	 {"${NOPE+alt}", ""},	   {"${NOPE:-${TAG}}", "1.2.3"},
		{"${NOPE}", ""},	 {"cost $5", "cost $5"},   {"", ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char why[256];
		char *unset = NULL;
		autofree char *s = compose_interpolate(ok[i].in, test_env, NULL, &unset, why);
		free(unset);
		if (!s)
			FAILF("%s: %s", ok[i].in, why);
		CHECK_STR(s, ok[i].out);
	}
	char why[256];
	char *unset = NULL;
	CHECK(compose_interpolate("${NOPE:?set it}", test_env, NULL, &unset, why) == NULL);
	CHECK(strstr(why, "required variable NOPE is not set: set it") != NULL);
	CHECK(compose_interpolate("${NOPE", test_env, NULL, &unset, why) == NULL);
	autofree char *s = compose_interpolate("${A}${B}", test_env, NULL, &unset, why);
	CHECK_STR(s, ""); /* both unset: empty, as Compose does (with a warning) */
	CHECK_STR(unset, "A");
	free(unset);
}

TEST(shell_split_and_env_lines)
{
	char why[200];
	char **w = compose_shell_split("sh -c 'echo \"hi there\"' a\\ b \"x\\\"y\" ''", why,
				       sizeof(why));
	if (!w)
		FAILF("%s", why);
	CHECK_INT(strv_len(w), 6);
	CHECK_STR(w[2], "echo \"hi there\"");
	CHECK_STR(w[3], "a b");
	CHECK_STR(w[4], "x\"y");
	CHECK_STR(w[5], "");
	strv_free(w);
	CHECK(compose_shell_split("echo 'open", why, sizeof(why)) == NULL);

	char *k, *v;
	CHECK_INT(compose_env_line("# comment", &k, &v), 0);
	CHECK_INT(compose_env_line("", &k, &v), 0);
	CHECK_INT(compose_env_line("export A = 'x y' ", &k, &v), 1);
	CHECK_STR(k, "A");
	CHECK_STR(v, "x y");
	free(k), free(v);
	CHECK_INT(compose_env_line("B=1 # note", &k, &v), 1);
	CHECK_STR(v, "1");
	free(k), free(v);
	CHECK_INT(compose_env_line("C=\"a\\nb\"", &k, &v), 1);
	CHECK_STR(v, "a\nb");
	free(k), free(v);
	CHECK_INT(compose_env_line("BARE", &k, &v), 1);
	CHECK(v == NULL);
	free(k);
	CHECK_INT(compose_env_line("not a line", &k, &v), -1);
}

TEST_MAIN_BEGIN("compose")
RUN(fixtures_translate_to_golden_forms);
RUN(unusable_files_exit_1_with_the_reason);
RUN(interpolation);
RUN(shell_split_and_env_lines);
TEST_MAIN_END
