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

TEST_MAIN_BEGIN("api.decode")
RUN(query);
RUN(flag);
RUN(seconds);
RUN(body);
TEST_MAIN_END
