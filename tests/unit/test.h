/*
 * A tiny unit test harness. Each test binary defines test functions with
 * TEST(name) and lists them in main() with RUN(name). Every case prints
 * "ok NAME" or "FAIL NAME: where: what"; the binary exits non-zero when any
 * case failed. tests/run.sh counts the lines.
 */
#ifndef CLBSD_TEST_H
#define CLBSD_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_cases;
static int test_case_failed;
static const char *test_prog = "unit";

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
	do {                                                                                       \
		test_case_failed = 0;                                                              \
		test_##name();                                                                     \
		if (test_case_failed)                                                              \
			test_failed_cases++;                                                       \
		else                                                                               \
			printf("ok %s.%s\n", test_prog, #name);                                    \
		fflush(stdout);                                                                    \
	} while (0)

#define FAILF(...)                                                                                 \
	do {                                                                                       \
		printf("FAIL %s.%s: %s:%d: ", test_prog, __func__ + 5, __FILE__, __LINE__);        \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		test_case_failed = 1;                                                              \
		return;                                                                            \
	} while (0)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAILF("check failed: %s", #cond);                                          \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b)                                                                      \
			FAILF("%s == %lld, expected %s == %lld", #a, _a, #b, _b);                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
			FAILF("%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)",             \
			      _b ? _b : "(null)");                                                 \
	} while (0)

#define TEST_MAIN_BEGIN(prog)                                                                      \
	int main(void)                                                                             \
	{                                                                                          \
		test_prog = prog;

#define TEST_MAIN_END                                                                              \
	return test_failed_cases ? 1 : 0;                                                          \
	}

#endif
