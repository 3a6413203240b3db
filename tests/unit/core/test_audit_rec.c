/* The audit log's pure parts (src/core/audit_rec.c): encoder, rotation rule, filters, AUDITCFG. */
#include "core/audit_rec.h"
#include "util/json.h"
#include "util/util.h"
#include "test.h"

#include <stdint.h>

TEST(line_time_seq_first)
{
	json_t *f = json_pack("{s:s,s:i,s:s,s:n}", "event", "api", "uid", 1000, "path",
			      "/v1/containers/web/start", "container");
	/* 2026-12-07T17:17:18.123456789Z */
	autofree char *line = audit_rec_line(1796663838123456789LL, 42, f);
	json_decref(f);
	CHECK_STR(line, "{\"time\":\"2026-12-07T17:17:18.123Z\",\"seq\":42,\"event\":\"api\","
			"\"uid\":1000,\"path\":\"/v1/containers/web/start\",\"container\":null}");
}

TEST(line_is_one_line)
{
	json_t *f = json_pack("{s:s}", "error", "first\nsecond\r\nthird");
	autofree char *line = audit_rec_line(1, 1, f);
	json_decref(f);
	CHECK(!strchr(line, '\n') && !strchr(line, '\r'));
	json_t *back = json_loads(line, 0, NULL);
	CHECK(back);
	CHECK_STR(json_str(back, "error"), "first\nsecond\r\nthird");
	json_decref(back);
}

TEST(line_caller_cannot_forge_time_or_seq)
{
	json_t *f = json_pack("{s:s,s:i}", "time", "1970-01-01T00:00:00.000Z", "seq", 1);
	autofree char *line = audit_rec_line(1796663838000000000LL, 7, f);
	json_decref(f);
	CHECK_STR(line, "{\"time\":\"2026-12-07T17:17:18.000Z\",\"seq\":7}");
}

TEST(long_strings_cut_on_utf8_boundary)
{
	/* "é" is two bytes: 2000 of them cut must not split one. */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 2000; i++)
		buf_adds(&b, "\xc3\xa9");
	json_t *f = json_pack("{s:[s]}", "argv", b.data);
	buf_release(&b);
	autofree char *line = audit_rec_line(1, 1, f);
	json_decref(f);
	json_t *back = json_loads(line, 0, NULL); /* jansson refuses broken UTF-8 */
	CHECK(back);
	const char *s = json_string_value(json_array_get(json_object_get(back, "argv"), 0));
	CHECK(s && strlen(s) <= AUDIT_STR_MAX && strlen(s) > AUDIT_STR_MAX - 8);
	CHECK(strcmp(s + strlen(s) - 3, "...") == 0);
	json_decref(back);
}

TEST(rotation_rule)
{
	/* An empty file takes any record, even one larger than the limit. */
	CHECK(!audit_rotate_due(0, 100, 10));
	CHECK(!audit_rotate_due(0, 5, 10));
	CHECK(!audit_rotate_due(5, 5, 10)); /* exactly full is fine */
	CHECK(audit_rotate_due(5, 6, 10));
	CHECK(audit_rotate_due(10LL << 20, 1, 10LL << 20));
}

TEST(file_order)
{
	autofree char *p0 = audit_file_path("/r/audit/audit.log", 0);
	autofree char *p3 = audit_file_path("/r/audit/audit.log", 3);
	CHECK_STR(p0, "/r/audit/audit.log");
	CHECK_STR(p3, "/r/audit/audit.log.3");
}

TEST(filters)
{
	json_t *r = json_pack("{s:s,s:i,s:s}", "time", "2026-12-07T17:17:18.123Z", "seq", 1,
			      "container", "web");
	int64_t at;
	CHECK_INT(time_parse_rfc3339("2026-12-07T17:17:18.123Z", &at), 0);
	CHECK(audit_rec_wanted(r, 0, NULL));
	CHECK(audit_rec_wanted(r, at, "web"));
	CHECK(!audit_rec_wanted(r, at + 1, NULL));
	CHECK(!audit_rec_wanted(r, 0, "db"));
	json_object_set_new(r, "container", json_null());
	CHECK(!audit_rec_wanted(r, 0, "web"));
	CHECK(audit_rec_wanted(r, 0, NULL));
	json_decref(r);
}

TEST(classes)
{
	unsigned m = 0;
	char why[512];
	CHECK_INT(audit_classes_parse("ex,pc", &m, why, sizeof(why)), 0);
	CHECK_INT(m, AUDIT_C_EX | AUDIT_C_PC);
	/* Success-only and failure-only both select the class here. */
	CHECK_INT(audit_classes_parse("+ex,-lo", &m, why, sizeof(why)), 0);
	CHECK_INT(m, AUDIT_C_EX | AUDIT_C_LO);
	CHECK_INT(audit_classes_parse("all,^fr,^fa", &m, why, sizeof(why)), 0);
	CHECK(m & AUDIT_C_EX && m & AUDIT_C_FW && !(m & AUDIT_C_FR) && !(m & AUDIT_C_FA));
	autofree char *text = audit_classes_text(AUDIT_C_LO | AUDIT_C_EX | AUDIT_C_FW);
	CHECK_STR(text, "ex,lo,fw");
	/* A class of a site's own audit_class(5) is ignored, and said so. */
	CHECK_INT(audit_classes_parse("ex,zz", &m, why, sizeof(why)), 1);
	CHECK_INT(m, AUDIT_C_EX);
	CHECK(strstr(why, "\"zz\""));
	unsigned keep = 77;
	CHECK_INT(audit_classes_parse("ex,,lo", &keep, why, sizeof(why)), -1);
	CHECK_INT(keep, 77);
	CHECK_INT(audit_classes_parse("^", &keep, why, sizeof(why)), -1);
}

TEST_MAIN_BEGIN("core.audit_rec")
RUN(line_time_seq_first);
RUN(line_is_one_line);
RUN(line_caller_cannot_forge_time_or_seq);
RUN(long_strings_cut_on_utf8_boundary);
RUN(rotation_rule);
RUN(file_order);
RUN(filters);
RUN(classes);
TEST_MAIN_END
