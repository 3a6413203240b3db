/*
 * Unit tests for the shim's pure parts: the scrollback ring, the CRI log
 * writer with rotation, and request parsing. The shim's sources are not in
 * libclbsd.a, so the pure files are compiled into this test directly.
 */
#include "test.h"

#include "shim/logw.c"
#include "shim/req.c"
#include "shim/ring.c"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ring ---- */

struct collect {
	struct buf all;
	char streams[256]; /* stream of each visited piece, as 'o'/'e' */
	size_t n;
};

static void collect_fn(int stream, const char *data, size_t len, void *ctx)
{
	struct collect *c = ctx;
	buf_add(&c->all, data, len);
	if (c->n + 1 < sizeof(c->streams))
		c->streams[c->n++] = stream == SHIM_STDERR ? 'e' : 'o';
	c->streams[c->n] = '\0';
}

static void collect(const struct shim_ring *r, struct collect *c)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->all);
	buf_add(&c->all, "", 0);
	shim_ring_visit(r, collect_fn, c);
}

TEST(ring_keeps_everything_below_capacity)
{
	struct shim_ring r;
	shim_ring_init(&r, 16);
	shim_ring_write(&r, SHIM_STDOUT, "hello ", 6);
	shim_ring_write(&r, SHIM_STDOUT, "world", 5);
	struct collect c;
	collect(&r, &c);
	CHECK_STR(c.all.data, "hello world");
	CHECK_STR(c.streams, "o"); /* one stream: the pieces share one run */
	buf_release(&c.all);
	shim_ring_release(&r);
}

TEST(ring_keeps_the_newest_bytes_across_the_wrap)
{
	struct shim_ring r;
	shim_ring_init(&r, 8);
	shim_ring_write(&r, SHIM_STDOUT, "abcdef", 6);
	shim_ring_write(&r, SHIM_STDOUT, "ghij", 4); /* wraps, drops "ab" */
	struct collect c;
	collect(&r, &c);
	CHECK_STR(c.all.data, "cdefghij");
	buf_release(&c.all);
	shim_ring_write(&r, SHIM_STDOUT, "0123456789XY", 12); /* bigger than the ring */
	collect(&r, &c);
	CHECK_STR(c.all.data, "456789XY");
	buf_release(&c.all);
	shim_ring_release(&r);
}

TEST(ring_keeps_streams_apart)
{
	struct shim_ring r;
	shim_ring_init(&r, 10);
	shim_ring_write(&r, SHIM_STDOUT, "out1", 4);
	shim_ring_write(&r, SHIM_STDERR, "err1", 4);
	shim_ring_write(&r, SHIM_STDOUT, "o2", 2);
	shim_ring_write(&r, SHIM_STDERR, "E", 1); /* evicts "o" of out1 */
	struct collect c;
	collect(&r, &c);
	CHECK_STR(c.all.data, "ut1err1o2E");
	CHECK_STR(c.streams, "oeoe");
	buf_release(&c.all);
	shim_ring_write(&r, SHIM_STDOUT, "1234567", 7); /* evicts out1 and err1 */
	collect(&r, &c);
	CHECK_STR(c.all.data, "o2E1234567");
	CHECK_STR(c.streams, "oeo");
	buf_release(&c.all);
	shim_ring_release(&r);
}

TEST(ring_segment_table_overflow_drops_oldest_run)
{
	struct shim_ring r;
	shim_ring_init(&r, 1 << 16);
	r.seg_max = 4;
	for (int i = 0; i < 6; i++)
		shim_ring_write(&r, i % 2 ? SHIM_STDERR : SHIM_STDOUT, i % 2 ? "e" : "o", 1);
	struct collect c;
	collect(&r, &c);
	CHECK_INT(r.seg_n, 4);
	CHECK_STR(c.all.data, "oeoe");
	CHECK_STR(c.streams, "oeoe");
	buf_release(&c.all);
	shim_ring_release(&r);
}

TEST(ring_disabled_and_empty)
{
	struct shim_ring r;
	shim_ring_init(&r, 0);
	shim_ring_write(&r, SHIM_STDOUT, "x", 1);
	struct collect c;
	collect(&r, &c);
	CHECK_STR(c.all.data, "");
	CHECK(r.data == NULL);
	buf_release(&c.all);
	shim_ring_release(&r);
}

TEST(ring_random_against_model)
{
	/* Compare with a naive model: the last cap bytes of everything written. */
	struct shim_ring r;
	const size_t cap = 97;
	shim_ring_init(&r, cap);
	struct buf model = BUF_INIT;
	unsigned seed = 12345;
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 8) % 150;
		char chunk[150];
		for (size_t k = 0; k < len; k++)
			chunk[k] = (char)('a' + (i + k) % 26);
		shim_ring_write(&r, (int)((seed >> 4) & 1), chunk, len);
		buf_add(&model, chunk, len);
		if (model.len > cap)
			buf_consume(&model, model.len - cap);
		struct collect c;
		collect(&r, &c);
		if (c.all.len != model.len || memcmp(c.all.data, model.data, model.len) != 0) {
			buf_release(&c.all);
			FAILF("ring differs from the model after write %d", i);
		}
		buf_release(&c.all);
	}
	buf_release(&model);
	shim_ring_release(&r);
}

/* ---- CRI log ---- */

static int64_t fixed_clock(void)
{
	return 1795378066123456789LL; /* 2026-11-22T20:07:46.123456789Z */
}

static char *mkdtemp_dir(void)
{
	char *d = xstrdup("/tmp/clbsd-shim-test-XXXXXX");
	if (!mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static char *slurp(const char *dir, const char *name)
{
	autofree char *p = xasprintf("%s/%s", dir, name);
	char *s = NULL;
	struct clbsd_err err;
	if (fs_read_file(p, &s, NULL, &err) < 0)
		return NULL;
	return s;
}

/* The log text with the time stamps replaced by "T". */
static char *records(const char *text)
{
	struct buf b = BUF_INIT;
	buf_add(&b, "", 0);
	const char *p = text;
	while (p && *p) {
		const char *sp = strchr(p, ' ');
		const char *nl = strchr(p, '\n');
		if (!sp || !nl || sp > nl)
			break;
		buf_adds(&b, "T");
		buf_add(&b, sp, (size_t)(nl + 1 - sp));
		p = nl + 1;
	}
	return buf_detach(&b, NULL);
}

static void rmtree(const char *d)
{
	struct clbsd_err err;
	fs_rm_rf(d, &err);
}

TEST(log_lines_and_partials)
{
	autofree char *dir = mkdtemp_dir();
	CHECK(dir != NULL);
	struct shim_log l;
	struct clbsd_err err;
	CHECK_INT(shim_log_open(&l, dir, 1 << 20, 3, &err), 0);
	l.clock = fixed_clock;
	shim_log_write(&l, SHIM_STDOUT, "one\ntw", 6);
	shim_log_write(&l, SHIM_STDERR, "oops\n", 5);
	shim_log_write(&l, SHIM_STDOUT, "o\n\nthree", 8);
	shim_log_flush(&l, SHIM_STDOUT); /* the stream paused */
	shim_log_write(&l, SHIM_STDOUT, " more\n", 6);
	shim_log_write(&l, SHIM_STDERR, "tail", 4);
	shim_log_close(&l);
	autofree char *text = slurp(dir, "container.log");
	CHECK(text != NULL);
	CHECK(strncmp(text, "2026-11-22T20:07:46.123456789Z stdout F one\n", 44) == 0);
	CHECK(strstr(text, ".123456789Z stdout F one\n") != NULL);
	autofree char *rec = records(text);
	CHECK_STR(rec, "T stdout F one\n"
		       "T stderr F oops\n"
		       "T stdout F two\n"
		       "T stdout F \n"
		       "T stdout P three\n"
		       "T stdout F  more\n"
		       "T stderr P tail\n");
	rmtree(dir);
}

TEST(log_splits_long_lines)
{
	autofree char *dir = mkdtemp_dir();
	struct shim_log l;
	struct clbsd_err err;
	CHECK_INT(shim_log_open(&l, dir, 1 << 20, 3, &err), 0);
	size_t n = SHIM_LOG_LINE_MAX * 2 + 10;
	autofree char *big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\n';
	shim_log_write(&l, SHIM_STDOUT, big, n + 1);
	shim_log_close(&l);
	autofree char *text = slurp(dir, "container.log");
	autofree char *rec = records(text);
	/* Two full-size 'P' pieces, then the rest closes the line. */
	const char *p = rec;
	for (int i = 0; i < 2; i++) {
		CHECK(strncmp(p, "T stdout P ", 11) == 0);
		p += 11;
		CHECK(strspn(p, "x") == SHIM_LOG_LINE_MAX);
		p += SHIM_LOG_LINE_MAX;
		CHECK(*p == '\n');
		p++;
	}
	CHECK_STR(p, "T stdout F xxxxxxxxxx\n");
	rmtree(dir);
}

TEST(log_strips_cr_for_tty)
{
	autofree char *dir = mkdtemp_dir();
	struct shim_log l;
	struct clbsd_err err;
	CHECK_INT(shim_log_open(&l, dir, 1 << 20, 3, &err), 0);
	l.strip_cr = true;
	shim_log_write(&l, SHIM_STDOUT, "hi\r\nthere\r\n", 11);
	shim_log_close(&l);
	autofree char *text = slurp(dir, "container.log");
	autofree char *rec = records(text);
	CHECK_STR(rec, "T stdout F hi\nT stdout F there\n");
	rmtree(dir);
}

TEST(log_pause_flush)
{
	autofree char *dir = mkdtemp_dir();
	struct shim_log l;
	struct clbsd_err err;
	CHECK_INT(shim_log_open(&l, dir, 1 << 20, 3, &err), 0);
	CHECK_INT(shim_log_deadline(&l), -1);
	shim_log_write(&l, SHIM_STDOUT, "$ ", 2);
	int64_t d = shim_log_deadline(&l);
	CHECK(d > 0);
	shim_log_tick(&l, d - 1); /* not yet */
	CHECK_INT(l.part[0].len, 2);
	shim_log_tick(&l, d);
	CHECK_INT(l.part[0].len, 0);
	CHECK_INT(shim_log_deadline(&l), -1);
	shim_log_close(&l);
	autofree char *text = slurp(dir, "container.log");
	autofree char *rec = records(text);
	CHECK_STR(rec, "T stdout P $ \n");
	rmtree(dir);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, "container.log", 13) == 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

TEST(log_rotation)
{
	autofree char *dir = mkdtemp_dir();
	struct shim_log l;
	struct clbsd_err err;
	/* Each record is 30 (time) + 10 (" stdout F ") + 4 + 1 = 45 bytes. */
	CHECK_INT(shim_log_open(&l, dir, 100, 3, &err), 0);
	l.clock = fixed_clock;
	const char *lines[] = {"aaaa\n", "bbbb\n", "cccc\n", "dddd\n",
			       "eeee\n", "ffff\n", "gggg\n"};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		shim_log_write(&l, SHIM_STDOUT, lines[i], 5);
	shim_log_close(&l);
	CHECK_INT(count_files(dir), 3);
	autofree char *cur = slurp(dir, "container.log");
	autofree char *one = slurp(dir, "container.log.1");
	autofree char *two = slurp(dir, "container.log.2");
	autofree char *three = slurp(dir, "container.log.3");
	CHECK(three == NULL);
	autofree char *rc = records(cur);
	autofree char *r1 = records(one);
	autofree char *r2 = records(two);
	CHECK_STR(rc, "T stdout F gggg\n");
	CHECK_STR(r1, "T stdout F eeee\nT stdout F ffff\n");
	CHECK_STR(r2, "T stdout F cccc\nT stdout F dddd\n");
	struct stat st;
	autofree char *p = xasprintf("%s/container.log.1", dir);
	CHECK_INT(stat(p, &st), 0);
	CHECK(st.st_size <= 100);

	/* Reopening appends and keeps counting the existing size. */
	CHECK_INT(shim_log_open(&l, dir, 100, 3, &err), 0);
	CHECK_INT(l.size, 45);
	shim_log_write(&l, SHIM_STDOUT, "hhhh\n", 5);
	CHECK_INT(l.size, 90);
	shim_log_close(&l);
	rmtree(dir);
}

TEST(log_rotation_single_file)
{
	autofree char *dir = mkdtemp_dir();
	struct shim_log l;
	struct clbsd_err err;
	CHECK_INT(shim_log_open(&l, dir, 100, 1, &err), 0);
	for (int i = 0; i < 5; i++)
		shim_log_write(&l, SHIM_STDERR, "zzzz\n", 5);
	shim_log_close(&l);
	CHECK_INT(count_files(dir), 1);
	autofree char *cur = slurp(dir, "container.log");
	autofree char *rc = records(cur);
	CHECK_STR(rc, "T stderr F zzzz\n");
	rmtree(dir);
}

TEST(log_open_fails_clearly)
{
	struct shim_log l;
	struct clbsd_err err;
	CHECK(shim_log_open(&l, "/nonexistent/clbsd-dir", 100, 3, &err) < 0);
	CHECK(strstr(err.msg, "/nonexistent/clbsd-dir/container.log") != NULL);
}

/* ---- requests ---- */

TEST(req_simple_ops)
{
	struct shim_req q;
	struct clbsd_err err;
	CHECK_INT(shim_req_parse("{\"op\":\"state\"}", &q, &err), 0);
	CHECK_INT(q.op, SHIM_OP_STATE);
	shim_req_release(&q);
	CHECK_INT(shim_req_parse("{\"op\":\"wait\"}", &q, &err), 0);
	CHECK_INT(q.op, SHIM_OP_WAIT);
	shim_req_release(&q);
	CHECK_INT(shim_req_parse("{\"op\":\"release\"}", &q, &err), 0);
	CHECK_INT(q.op, SHIM_OP_RELEASE);
	shim_req_release(&q);
}

TEST(req_kill)
{
	struct shim_req q;
	struct clbsd_err err;
	CHECK_INT(shim_req_parse("{\"op\":\"kill\",\"signal\":9,\"all\":true}", &q, &err), 0);
	CHECK_INT(q.op, SHIM_OP_KILL);
	CHECK_INT(q.signal, 9);
	CHECK(q.all);
	shim_req_release(&q);
	CHECK_INT(shim_req_parse("{\"op\":\"kill\"}", &q, &err), 0);
	CHECK_INT(q.signal, SIGTERM);
	CHECK(!q.all);
	shim_req_release(&q);
	CHECK_INT(shim_req_parse("{\"op\":\"kill\",\"signal\":\"HUP\"}", &q, &err), 0);
	CHECK_INT(q.signal, SIGHUP);
	shim_req_release(&q);
	CHECK(shim_req_parse("{\"op\":\"kill\",\"signal\":0}", &q, &err) < 0);
	CHECK(strstr(err.msg, "signal") != NULL);
	CHECK(shim_req_parse("{\"op\":\"kill\",\"signal\":99}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"kill\",\"signal\":\"NOPE\"}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"kill\",\"all\":1}", &q, &err) < 0);
	CHECK(strstr(err.msg, "\"all\"") != NULL);
}

TEST(req_attach)
{
	struct shim_req q;
	struct clbsd_err err;
	CHECK_INT(shim_req_parse("{\"op\":\"attach\",\"stdin\":true,\"replay\":true,"
				 "\"rows\":24,\"cols\":80,\"release\":true}",
				 &q, &err),
		  0);
	CHECK_INT(q.op, SHIM_OP_ATTACH);
	CHECK(q.in && q.replay && q.release);
	CHECK_INT(q.rows, 24);
	CHECK_INT(q.cols, 80);
	shim_req_release(&q);
	CHECK_INT(shim_req_parse("{\"op\":\"attach\"}", &q, &err), 0);
	CHECK(!q.in && !q.replay && !q.release);
	CHECK_INT(q.rows, 0);
	shim_req_release(&q);
	CHECK(shim_req_parse("{\"op\":\"attach\",\"rows\":70000}", &q, &err) < 0);
	CHECK(strstr(err.msg, "rows") != NULL);
	CHECK(shim_req_parse("{\"op\":\"attach\",\"rows\":-1}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"attach\",\"replay\":\"yes\"}", &q, &err) < 0);
}

TEST(req_exec)
{
	struct shim_req q;
	struct clbsd_err err;
	CHECK_INT(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"sh\",\"-c\",\"exit 3\"],"
				 "\"env\":[\"A=1\"],\"cwd\":\"/tmp\",\"uid\":1000,\"gid\":100,"
				 "\"tty\":true,\"stdin\":true,\"rows\":30,\"cols\":100}",
				 &q, &err),
		  0);
	CHECK_INT(q.op, SHIM_OP_EXEC);
	CHECK_INT(strv_len(q.argv), 3);
	CHECK_STR(q.argv[2], "exit 3");
	CHECK_INT(strv_len(q.env), 1);
	CHECK_STR(q.cwd, "/tmp");
	CHECK(q.has_uid && q.has_gid);
	CHECK_INT(q.uid, 1000);
	CHECK_INT(q.gid, 100);
	CHECK(q.tty && q.in);
	CHECK_INT(q.rows, 30);
	CHECK_INT(q.cols, 100);
	shim_req_release(&q);

	CHECK_INT(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"]}", &q, &err), 0);
	CHECK(q.env && q.env[0] == NULL);
	CHECK(q.cwd == NULL && !q.has_uid && !q.tty);
	shim_req_release(&q);

	CHECK(shim_req_parse("{\"op\":\"exec\"}", &q, &err) < 0);
	CHECK(strstr(err.msg, "argv") != NULL);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[]}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[1]}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"],\"env\":[\"NOEQ\"]}", &q, &err) <
	      0);
	CHECK(strstr(err.msg, "env") != NULL);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"],\"cwd\":\"rel\"}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"],\"cwd\":\"/a/../b\"}", &q, &err) <
	      0);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"],\"uid\":-1}", &q, &err) < 0);
	CHECK(shim_req_parse("{\"op\":\"exec\",\"argv\":[\"ls\"],\"uid\":4294967295}", &q, &err) <
	      0);
}

TEST(req_bad_lines)
{
	struct shim_req q;
	struct clbsd_err err;
	CHECK(shim_req_parse("", &q, &err) < 0);
	CHECK(strstr(err.msg, "not valid JSON") != NULL);
	CHECK(shim_req_parse("{\"op\":", &q, &err) < 0);
	CHECK(shim_req_parse("[1,2]", &q, &err) < 0);
	CHECK(strstr(err.msg, "object") != NULL);
	CHECK(shim_req_parse("{}", &q, &err) < 0);
	CHECK(strstr(err.msg, "\"op\"") != NULL);
	CHECK(shim_req_parse("{\"op\":\"dance\"}", &q, &err) < 0);
	CHECK(strstr(err.msg, "dance") != NULL);
	CHECK(shim_req_parse("{\"op\":\"state\",\"op\":\"wait\"}", &q, &err) < 0);
}

TEST(env_merge)
{
	char *base[] = {"PATH=/bin", "HOME=/root", "A=1", NULL};
	char *over[] = {"A=2", "B=3", "B=4", NULL};
	char **m = shim_env_merge(base, over);
	CHECK_INT(strv_len(m), 4);
	CHECK_STR(m[0], "PATH=/bin");
	CHECK_STR(m[1], "HOME=/root");
	CHECK_STR(m[2], "A=2");
	CHECK_STR(m[3], "B=4");
	strv_free(m);
	m = shim_env_merge(NULL, NULL);
	CHECK(m && m[0] == NULL);
	strv_free(m);
}

TEST_MAIN_BEGIN("shim")
RUN(ring_keeps_everything_below_capacity);
RUN(ring_keeps_the_newest_bytes_across_the_wrap);
RUN(ring_keeps_streams_apart);
RUN(ring_segment_table_overflow_drops_oldest_run);
RUN(ring_disabled_and_empty);
RUN(ring_random_against_model);
RUN(log_lines_and_partials);
RUN(log_splits_long_lines);
RUN(log_strips_cr_for_tty);
RUN(log_pause_flush);
RUN(log_rotation);
RUN(log_rotation_single_file);
RUN(log_open_fails_clearly);
RUN(req_simple_ops);
RUN(req_kill);
RUN(req_attach);
RUN(req_exec);
RUN(req_bad_lines);
RUN(env_merge);
TEST_MAIN_END
