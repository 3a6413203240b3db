/*
 * Volume destinations and sizes that used to slip through: a volume over
 * /proc, /sys or /dev, and a memory size that rounds to 0 (no limit).
 */
#include "test.h"
#include "util/util.h"

#include <string.h>

TEST(volume_dest)
{
	const char *why = NULL;
	static const char *const ok[] = {"/srv",     "/data/x",	  "/procfs",  "/system",
					 "/devices", "/srv/proc", "/home/dev"};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!valid_volume_dest(ok[i], &why))
			FAILF("%s refused: %s", ok[i], why);
	static const char *const refused[] = {
		"/proc",       "/proc/",  "//proc", "/proc/sys", "/proc/1/root", "/sys",
		"/sys/kernel", "/dev",	  "/dev/",  "/dev/shm",	 "/dev/kmsg",	 "///dev//pts",
		"/",	       "//",	  "",	    "proc",	 "dev/shm",	 "/srv/../proc",
		"/./sys",      "/proc/.."};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		why = NULL;
		if (valid_volume_dest(refused[i], &why))
			FAILF("%s accepted", refused[i]);
		CHECK(why && *why);
	}
	CHECK(!valid_volume_dest(NULL, &why));
	CHECK(valid_volume_dest("/proc", &why) == false && strstr(why, "/proc, /sys, /dev"));
	CHECK(valid_volume_dest("/", &why) == false && strstr(why, "cannot be /"));
}

TEST(size_below_a_byte)
{
	struct clbsd_err err;
	int64_t v = 42;
	CHECK(parse_size("0.0000001", &v, &err) < 0);
	CHECK_INT(v, 42);
	CHECK(strstr(err.msg, "less than one byte") != NULL);
	CHECK(parse_size("0.5", &v, &err) < 0);
	CHECK(parse_size("0.0000000001k", &v, &err) < 0);
	/* Zero itself is zero, and a fraction that is still a byte or more is fine. */
	CHECK_INT(parse_size("0", &v, &err), 0);
	CHECK_INT(v, 0);
	CHECK_INT(parse_size("0.001k", &v, &err), 0);
	CHECK_INT(v, 1);
	CHECK_INT(parse_size("0.5M", &v, &err), 0);
	CHECK_INT(v, 512 * 1024);
}

TEST_MAIN_BEGIN("util_valid")
RUN(volume_dest);
RUN(size_below_a_byte);
TEST_MAIN_END
