/* The Prometheus text encoder (src/core/prom_text.c): escaping, values, histograms. */
#include "core/prom_text.h"
#include "test.h"

#include <math.h>

static const char *text(const struct buf *b)
{
	return b->data ? b->data : "";
}

TEST(label_escaping)
{
	struct buf b;
	buf_init(&b);
	struct prom_label l[] = {{"name", "we\"b\\1\nx"}, {"kind", "native"}};
	prom_sample_u64(&b, "clbsd_x", l, 2, 7);
	CHECK_STR(text(&b), "clbsd_x{name=\"we\\\"b\\\\1\\nx\",kind=\"native\"} 7\n");
	buf_release(&b);
}

TEST(help_escaping_and_type)
{
	struct buf b;
	buf_init(&b);
	prom_family(&b, "clbsd_y_total", PROM_COUNTER, "a \\ and\na \"quote\"");
	CHECK_STR(text(&b), "# HELP clbsd_y_total a \\\\ and\\na \"quote\"\n"
			    "# TYPE clbsd_y_total counter\n");
	buf_release(&b);
}

TEST(values)
{
	struct buf b;
	buf_init(&b);
	prom_sample(&b, "a", NULL, 0, 3);
	prom_sample(&b, "a", NULL, 0, -2);
	prom_sample(&b, "a", NULL, 0, 0.25);
	prom_sample(&b, "a", NULL, 0, NAN);
	prom_sample(&b, "a", NULL, 0, INFINITY);
	prom_sample(&b, "a", NULL, 0, -INFINITY);
	prom_sample(&b, "a", NULL, 0, 1e300);
	prom_sample_u64(&b, "a", NULL, 0, 18446744073709551615ULL);
	CHECK_STR(text(&b), "a 3\na -2\na 0.25\na NaN\na +Inf\na -Inf\na 1.0000000000000001e+300\n"
			    "a 18446744073709551615\n");
	buf_release(&b);
}

TEST(histogram_cumulative)
{
	struct buf b;
	buf_init(&b);
	static const double bounds[] = {0.01, 0.1, 1};
	/* 2 at <= 0.01, 0 in (0.01, 0.1], 3 in (0.1, 1], 1 above. */
	static const uint64_t counts[] = {2, 0, 3, 1};
	struct prom_label l[] = {{"x", "y"}};
	prom_histogram(&b, "h_seconds", l, 1, bounds, 3, counts, 4.5);
	CHECK_STR(text(&b), "h_seconds_bucket{x=\"y\",le=\"0.01\"} 2\n"
			    "h_seconds_bucket{x=\"y\",le=\"0.1\"} 2\n"
			    "h_seconds_bucket{x=\"y\",le=\"1\"} 5\n"
			    "h_seconds_bucket{x=\"y\",le=\"+Inf\"} 6\n"
			    "h_seconds_sum{x=\"y\"} 4.5\n"
			    "h_seconds_count{x=\"y\"} 6\n");
	buf_release(&b);
}

TEST(histogram_without_labels)
{
	struct buf b;
	buf_init(&b);
	static const double bounds[] = {0.5};
	static const uint64_t counts[] = {0, 0};
	prom_histogram(&b, "h", NULL, 0, bounds, 1, counts, 0);
	CHECK_STR(text(&b),
		  "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
	buf_release(&b);
}

TEST(shared_labels)
{
	struct buf pre = BUF_INIT, b = BUF_INIT;
	struct prom_label l[] = {{"name", "a\"b"}, {"kind", "docker"}};
	prom_labels(&pre, l, 2);
	CHECK_STR(text(&pre), "name=\"a\\\"b\",kind=\"docker\"");
	struct prom_label st = {"state", "running"};
	prom_sample_pre(&b, "s", pre.data, &st, 1, 1);
	prom_sample_pre_u64(&b, "u", pre.data, NULL, 0, 42);
	prom_sample_pre_ns(&b, "cpu_seconds_total", pre.data, NULL, 0, 12000000345LL);
	prom_sample_pre_ns(&b, "t", "", NULL, 0, 5);
	CHECK_STR(text(&b), "s{name=\"a\\\"b\",kind=\"docker\",state=\"running\"} 1\n"
			    "u{name=\"a\\\"b\",kind=\"docker\"} 42\n"
			    "cpu_seconds_total{name=\"a\\\"b\",kind=\"docker\"} 12.000000345\n"
			    "t 0.000000005\n");
	buf_release(&pre);
	buf_release(&b);
}

TEST_MAIN_BEGIN("prom_text")
RUN(label_escaping);
RUN(help_escaping_and_type);
RUN(values);
RUN(histogram_cumulative);
RUN(histogram_without_labels);
RUN(shared_labels);
TEST_MAIN_END
