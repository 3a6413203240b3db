/*
 * `clbsd update` has an option for every declarable key of the key table
 * (core/spec_keys.c): a key added there without one here fails this test.
 * The command's source is included directly (the CLI is a program, not
 * part of libclbsd), with the few CLI functions it calls stubbed.
 */
#include "test.h"

#include "cli/cmd_update.c"
#include "core/spec_keys.h"

const char *cli_get(const struct cli_args *a, const char *name)
{
	return NULL;
}
const char *cli_get_nth(const struct cli_args *a, const char *name, size_t i)
{
	return NULL;
}
int cli_usage(const char *fmt, ...)
{
	return 2;
}
int cli_send(const char *method, const char *path, json_t *body, const char *text,
	     const char *field)
{
	json_decref(body);
	return 0;
}

static bool has_opt(const char *name)
{
	for (const struct cli_opt *o = cli_update_opts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return true;
	return false;
}

TEST(an_option_per_declarable_key)
{
	for (size_t i = 0; i < ctr_nkeys; i++) {
		const struct ctr_key *k = &ctr_keys[i];
		/* The form's keys, and the API's flat limits (memory, cpus, pids). */
		bool flat = !k->form && k->json &&
			    (!strcmp(k->json, "memory") || !strcmp(k->json, "cpus") ||
			     !strcmp(k->json, "pids"));
		const char *name = k->form ? k->form + 1 : flat ? k->json : NULL;
		if (name && !has_opt(name))
			FAILF("clbsd update has no --%s (key %s of the key table)", name,
			      k->form ? k->form : k->json);
	}
}

TEST(values)
{
	json_t *v = value_of("256M");
	CHECK(json_is_string(v));
	json_decref(v);
	v = value_of("8080");
	CHECK(json_is_integer(v) && json_integer_value(v) == 8080);
	json_decref(v);
	v = value_of("0.5");
	CHECK(json_is_real(v));
	json_decref(v);
	v = value_of("true");
	CHECK(json_is_true(v));
	json_decref(v);
	v = value_of("[{\"source\": \"/a\", \"dest\": \"/b\"}]");
	CHECK(json_is_array(v));
	json_decref(v);
}

TEST_MAIN_BEGIN("cli.update")
RUN(an_option_per_declarable_key);
RUN(values);
TEST_MAIN_END
