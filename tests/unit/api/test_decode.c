/* The API's request decoding (src/api/req_decode.c): queries, flags, timeouts, bodies. */
#include "api/req_decode.h"
#include "test.h"
#include "util/util.h"

TEST(query)
{
	autofree char *a = api_query_value("all=1", "all");
	CHECK_STR(a, "1");
	autofree char *b = api_query_value("start=1&hold=1", "hold");
	CHECK_STR(b, "1");
	autofree char *c = api_query_value("start=1&hold=1", "hol");
	CHECK(c == NULL);
	CHECK(api_query_value(NULL, "all") == NULL);
	CHECK(api_query_value("", "all") == NULL);
	/* Percent escapes and '+' are decoded. */
	autofree char *t = api_query_value("since=2026-11-22T20%3A07%3A46Z&type=a+b", "since");
	CHECK_STR(t, "2026-11-22T20:07:46Z");
	autofree char *u = api_query_value("since=x&type=a+b", "type");
	CHECK_STR(u, "a b");
	/* The first of a repeated key. */
	autofree char *r = api_query_value("t=1&t=2", "t");
	CHECK_STR(r, "1");
	/* An empty value is there, and empty. */
	autofree char *e = api_query_value("type=&follow=1", "type");
	CHECK_STR(e, "");
	/* A part without '=' spoils the query: libevent's rule, kept. */
	CHECK(api_query_value("all&t=1", "t") == NULL);
}

TEST(flag)
{
	CHECK(api_flag_value("1"));
	CHECK(api_flag_value("true"));
	CHECK(api_flag_value("yes"));
	CHECK(!api_flag_value(NULL));
	CHECK(!api_flag_value(""));
	CHECK(!api_flag_value("0"));
	CHECK(!api_flag_value("false"));
	CHECK(!api_flag_value("TRUE"));
	CHECK(!api_flag_value("1 "));
}

TEST(seconds)
{
	int t = -1;
	CHECK_INT(api_seconds_value(NULL, 10, &t), 0);
	CHECK_INT(t, 10);
	CHECK_INT(api_seconds_value("0", 10, &t), 0);
	CHECK_INT(t, 0);
	CHECK_INT(api_seconds_value("86400", 10, &t), 0);
	CHECK_INT(t, 86400);
	t = 7;
	CHECK_INT(api_seconds_value("86401", 10, &t), -1);
	CHECK_INT(api_seconds_value("-1", 10, &t), -1);
	CHECK_INT(api_seconds_value("1.5", 10, &t), -1);
	CHECK_INT(api_seconds_value("", 10, &t), -1);
	CHECK_INT(api_seconds_value("ten", 10, &t), -1);
	CHECK_INT(t, 7); /* untouched on failure */
}

TEST(body)
{
	char why[256] = "";
	json_t *j = api_body_decode("", 0, why, sizeof(why));
	CHECK(j && json_is_object(j) && json_object_size(j) == 0);
	json_decref(j);
	const char *ok = "{\"name\":\"web\",\"image\":\"forge\"}";
	j = api_body_decode(ok, strlen(ok), why, sizeof(why));
	CHECK(j);
	CHECK_STR(json_string_value(json_object_get(j, "name")), "web");
	json_decref(j);
	/* Only n bytes count. */
	j = api_body_decode("{}garbage", 2, why, sizeof(why));
	CHECK(j && json_is_object(j));
	json_decref(j);
	/* Text after a NUL is not read. */
	j = api_body_decode("{}\0{", 4, why, sizeof(why));
	CHECK(j && json_is_object(j));
	json_decref(j);
	j = api_body_decode("{\"name\":", 8, why, sizeof(why));
	CHECK(j == NULL);
	CHECK(strncmp(why, "request body is not JSON: 1:", 28) == 0);
	j = api_body_decode("\0{}", 3, why, sizeof(why));
	CHECK(j == NULL);
	/* Nesting past jansson's limit is an error, not a crash. */
	size_t depth = 5000;
	char *deep = xmalloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	j = api_body_decode(deep, 2 * depth, why, sizeof(why));
	free(deep);
	CHECK(j == NULL);
	CHECK(strstr(why, "request body is not JSON") == why);
}

TEST(fields_decode)
{
	char why[256];
	struct api_fields f;
	CHECK_INT(api_fields_decode("name,state,config.limits", &f, why, sizeof(why)), 0);
	CHECK_INT(f.n, 3);
	CHECK_STR(f.key[0], "name");
	CHECK(f.sub[0] == NULL);
	CHECK_STR(f.key[2], "config");
	CHECK_STR(f.sub[2], "limits");
	CHECK(api_fields_want(&f, "config"));
	CHECK(api_fields_want(&f, "state"));
	CHECK(!api_fields_want(&f, "limits"));
	CHECK(!api_fields_want(&f, "stats"));
	api_fields_release(&f);
	/* Empty parts between commas are skipped, as in a trailing comma. */
	CHECK_INT(api_fields_decode("name,,stats,", &f, why, sizeof(why)), 0);
	CHECK_INT(f.n, 2);
	CHECK(api_fields_want(&f, "stats"));
	api_fields_release(&f);

	/* What is not a selection: empty, bad names, two dots, too many. */
	static const char *const bad[] = {"",	  ",",	   "Name",  "a b",  "config.", ".limits",
					  "a..b", "a.b.c", "na-me", "x;rm", "a.B",     "é"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.n = 99;
		why[0] = '\0';
		if (api_fields_decode(bad[i], &f, why, sizeof(why)) != -1)
			FAILF("fields=\"%s\" decoded", bad[i]);
		CHECK_INT(f.n, 99); /* untouched */
		CHECK(strncmp(why, "fields: ", 8) == 0);
	}
	CHECK_INT(api_fields_decode("a.b.c", &f, why, sizeof(why)), -1);
	CHECK(strstr(why, "\"a.b.c\"") != NULL);
	CHECK_INT(api_fields_decode(NULL, &f, why, sizeof(why)), -1);
	char many[33 * 3 + 1] = "";
	for (int i = 0; i < 33; i++)
		strcat(many, "ab,");
	CHECK_INT(api_fields_decode(many, &f, why, sizeof(why)), -1);
	CHECK(strstr(why, "more than 32") != NULL);
	many[32 * 3] = '\0';
	CHECK_INT(api_fields_decode(many, &f, why, sizeof(why)), 0);
	CHECK_INT(f.n, 32);
	api_fields_release(&f);
}

/* The members picked, compared as compact JSON with sorted keys. */
static char *pick_text(const char *obj, const char *fields)
{
	char why[256];
	struct api_fields f;
	if (api_fields_decode(fields, &f, why, sizeof(why)) < 0)
		return xstrdup(why);
	json_t *o = json_loads(obj, 0, NULL);
	json_t *p = api_fields_pick(o, &f);
	char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	json_decref(o);
	api_fields_release(&f);
	return text;
}

TEST(fields_pick)
{
	const char *c = "{\"name\":\"web\",\"state\":\"running\",\"health\":null,"
			"\"config\":{\"env\":[\"A=1\"],\"limits\":{\"memory\":64,\"cpus\":0.5},"
			"\"tty\":false},\"network\":{\"mode\":\"none\",\"publish\":[]}}";
	autofree char *a = pick_text(c, "name,state");
	CHECK_STR(a, "{\"name\":\"web\",\"state\":\"running\"}");
	/* A part of an object member, and two parts gathered in one object. */
	autofree char *b = pick_text(c, "config.limits,config.tty");
	CHECK_STR(b, "{\"config\":{\"limits\":{\"cpus\":0.5,\"memory\":64},\"tty\":false}}");
	/* The whole member wins over a part of it, in either order. */
	autofree char *d = pick_text(c, "network.mode,network");
	CHECK_STR(d, "{\"network\":{\"mode\":\"none\",\"publish\":[]}}");
	autofree char *e = pick_text(c, "network,network.mode");
	CHECK_STR(e, "{\"network\":{\"mode\":\"none\",\"publish\":[]}}");
	/* A null member is kept, whole or for a part of it; a part of a
	 * member that is no object is not there. */
	autofree char *g = pick_text(c, "health,name.x,health.status");
	CHECK_STR(g, "{\"health\":null}");
	autofree char *g2 = pick_text(c, "health.status,health.log,name.x");
	CHECK_STR(g2, "{\"health\":null}");
	/* Members and parts the object does not have are left out. */
	autofree char *h = pick_text(c, "nope,config.nope,stats.cpu_usage_ns");
	CHECK_STR(h, "{}");
	/* A field named twice is there once. */
	autofree char *i = pick_text(c, "name,name,config.tty,config.tty");
	CHECK_STR(i, "{\"config\":{\"tty\":false},\"name\":\"web\"}");
	/* The source is not changed. */
	json_t *o = json_loads(c, 0, NULL);
	struct api_fields f;
	char why[256];
	CHECK_INT(api_fields_decode("config.limits", &f, why, sizeof(why)), 0);
	json_t *p = api_fields_pick(o, &f);
	api_fields_release(&f);
	json_decref(p);
	CHECK_INT(json_object_size(json_object_get(o, "config")), 3);
	json_decref(o);
}

TEST_MAIN_BEGIN("api.decode")
RUN(query);
RUN(flag);
RUN(seconds);
RUN(body);
RUN(fields_decode);
RUN(fields_pick);
TEST_MAIN_END
