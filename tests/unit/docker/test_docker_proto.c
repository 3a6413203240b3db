/*
 * The Engine API client's pure parts: stdcopy framing split at every byte,
 * endpoints, label filters, query escaping, error mapping, times.
 */
#include "docker/docker.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>

struct collect {
	struct buf out[4];
	int calls;
};

static void on_frame(int stream, const char *data, size_t n, void *arg)
{
	struct collect *c = arg;
	buf_add(&c->out[stream], data, n);
	c->calls++;
}

static size_t frame(unsigned char *p, int stream, const char *payload)
{
	size_t n = strlen(payload);
	p[0] = (unsigned char)stream;
	p[1] = p[2] = p[3] = 0;
	p[4] = (unsigned char)(n >> 24);
	p[5] = (unsigned char)(n >> 16);
	p[6] = (unsigned char)(n >> 8);
	p[7] = (unsigned char)n;
	memcpy(p + 8, payload, n);
	return 8 + n;
}

/* Three frames (one empty) cut in two at every offset, and fed a byte at a time. */
TEST(stdcopy_split_everywhere)
{
	unsigned char msg[256];
	size_t n = 0;
	n += frame(msg + n, 1, "hello\nwor");
	n += frame(msg + n, 2, "");
	n += frame(msg + n, 2, "oops\n");
	n += frame(msg + n, 1, "ld\n");
	for (size_t cut = 0; cut <= n; cut++) {
		struct collect c = {0};
		struct dk_demux m = {0};
		CHECK_INT(dk_demux_feed(&m, (const char *)msg, cut, on_frame, &c), 0);
		CHECK_INT(dk_demux_feed(&m, (const char *)msg + cut, n - cut, on_frame, &c), 0);
		CHECK(dk_demux_idle(&m));
		buf_adds(&c.out[1], "");
		buf_adds(&c.out[2], "");
		CHECK_STR(c.out[1].data, "hello\nworld\n");
		CHECK_STR(c.out[2].data, "oops\n");
		for (int i = 0; i < 4; i++)
			buf_release(&c.out[i]);
	}
	struct collect c = {0};
	struct dk_demux m = {0};
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(dk_demux_feed(&m, (const char *)msg + i, 1, on_frame, &c), 0);
		CHECK(dk_demux_idle(&m) ==
		      (i + 1 == n || i + 1 == 17 || i + 1 == 25 || i + 1 == 38));
	}
	buf_adds(&c.out[1], "");
	CHECK_STR(c.out[1].data, "hello\nworld\n");
	for (int i = 0; i < 4; i++)
		buf_release(&c.out[i]);
}

TEST(stdcopy_rejects_garbage)
{
	struct dk_demux m = {0};
	struct collect c = {0};
	/* A TTY's raw output is no frame: 'h' is not a stream number. */
	CHECK_INT(dk_demux_feed(&m, "hello world\n", 12, on_frame, &c), -EPROTO);
	struct dk_demux m2 = {0};
	const char pad[8] = {1, 0, 1, 0, 0, 0, 0, 1};
	CHECK_INT(dk_demux_feed(&m2, pad, 8, on_frame, &c), -EPROTO);
	CHECK_INT(c.calls, 0);
}

TEST(endpoints)
{
	struct clbsd_err err;
	struct dk_endpoint e;
	CHECK_INT(dk_endpoint_parse("unix:///run/docker.sock", NULL, NULL, NULL, &e, &err), 0);
	CHECK_INT(e.scheme, DK_UNIX);
	CHECK_STR(e.path, "/run/docker.sock");
	autofree char *u1 = dk_base_url(&e);
	CHECK_STR(u1, "http://localhost/v1.41");
	dk_endpoint_release(&e);

	CHECK_INT(dk_endpoint_parse("tcp://10.0.0.5:2376", "/ca.pem", "/c.pem", "/k.pem", &e, &err),
		  0);
	CHECK_INT(e.scheme, DK_TCP);
	CHECK_STR(e.host, "10.0.0.5");
	CHECK_INT(e.port, 2376);
	autofree char *u2 = dk_base_url(&e);
	CHECK_STR(u2, "https://10.0.0.5:2376/v1.41");
	dk_endpoint_release(&e);

	CHECK_INT(dk_endpoint_parse("tcp://vm.lan", NULL, NULL, NULL, &e, &err), 0);
	CHECK_INT(e.port, 2375);
	autofree char *u3 = dk_base_url(&e);
	CHECK_STR(u3, "http://vm.lan:2375/v1.41");
	dk_endpoint_release(&e);

	CHECK_INT(dk_endpoint_parse("tcp://[fd00::5]:2376", "/ca.pem", NULL, NULL, &e, &err), 0);
	autofree char *u4 = dk_base_url(&e);
	CHECK_STR(u4, "https://[fd00::5]:2376/v1.41");
	dk_endpoint_release(&e);

	CHECK_INT(dk_endpoint_parse("ssh://alice@vm.lan:2222", NULL, NULL, NULL, &e, &err), 0);
	CHECK_INT(e.scheme, DK_SSH);
	CHECK_STR(e.user, "alice");
	CHECK_STR(e.host, "vm.lan");
	CHECK_INT(e.port, 2222);
	char **argv = dk_ssh_argv(&e);
	autofree char *joined = NULL;
	struct buf b = BUF_INIT;
	for (size_t i = 0; argv[i]; i++)
		buf_addf(&b, "%s%s", i ? " " : "", argv[i]);
	joined = buf_detach(&b, NULL);
	CHECK_STR(joined,
		  "ssh -o BatchMode=yes -p 2222 -l alice -- vm.lan docker system dial-stdio");
	strv_free(argv);
	dk_endpoint_release(&e);

	const char *bad[] = {"",
			     "docker.sock",
			     "unix://relative",
			     "unix:///a/../b",
			     "tcp://",
			     "tcp://host:0",
			     "tcp://host:99999",
			     "tcp://host:2375/path",
			     "ssh://-oProxyCommand=x",
			     "ssh://-l@host",
			     "ssh://user@host/path",
			     "ssh://us er@host",
			     "http://host:2375",
			     NULL};
	for (size_t i = 0; bad[i]; i++) {
		if (dk_endpoint_parse(bad[i], NULL, NULL, NULL, &e, &err) != -EINVAL)
			FAILF("%s was accepted", bad[i]);
		CHECK_INT(err.kind, CLBSD_E_INVALID);
	}
	/* TLS files only with tcp, and a certificate with its key. */
	CHECK_INT(dk_endpoint_parse("unix:///s", "/ca", NULL, NULL, &e, &err), -EINVAL);
	CHECK_INT(dk_endpoint_parse("tcp://h:1", NULL, "/c.pem", NULL, &e, &err), -EINVAL);
	CHECK(strstr(err.msg, ":tls-key") != NULL);
}

TEST(filters_and_escaping)
{
	char *labels[] = {"org.clbsd.managed=true", "org.clbsd.instance=ab12", NULL};
	autofree char *f = dk_label_filters(labels);
	CHECK_STR(f, "{\"label\":[\"org.clbsd.managed=true\",\"org.clbsd.instance=ab12\"]}");
	autofree char *q = dk_query_escape(f);
	CHECK_STR(q, "%7B%22label%22%3A%5B%22org.clbsd.managed%3Dtrue%22%2C%22org.clbsd.instance%"
		     "3Dab12%22%5D%7D");
	autofree char *q2 = dk_query_escape("a b&c/~_-.");
	CHECK_STR(q2, "a%20b%26c%2F~_-.");
}

TEST(error_mapping)
{
	struct clbsd_err err;
	const char *b404 = "{\"message\":\"No such image: nope:latest\"}\n";
	CHECK_INT(dk_err_status(404, b404, strlen(b404), "docker POST /containers/create", &err),
		  -ENOENT);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	CHECK_STR(err.msg, "docker POST /containers/create: 404: No such image: nope:latest");
	const char *b409 = "{\"message\":\"Conflict. The container name \\\"/web\\\" is already in "
			   "use\"}";
	CHECK(dk_err_status(409, b409, strlen(b409), "x", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	const char *b400 = "{\"message\":\"Minimum memory limit allowed is 6MB\"}";
	CHECK(dk_err_status(400, b400, strlen(b400), "x", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(strstr(err.msg, "6MB") != NULL);
	CHECK(dk_err_status(500, "plain\ntext", 10, "x", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INTERNAL);
	CHECK_STR(err.msg, "x: 500: plain text");
	CHECK(dk_err_status(502, NULL, 0, "x", &err) < 0);
	CHECK_STR(err.msg, "x: 502: (no message)");
}

TEST(times)
{
	CHECK_INT(dk_time_ns("0001-01-01T00:00:00Z"), 0);
	CHECK_INT(dk_time_ns(NULL), 0);
	CHECK_INT(dk_time_ns("2026-12-07T11:00:00.123456789Z"), 1796641200123456789LL);
}

/* NDJSON progress (a pull's, a build's) split into objects whatever the chunks. */
static int count_line(json_t *j, void *arg)
{
	struct buf *b = arg;
	const char *s = json_string_value(json_object_get(j, "status"));
	buf_adds(b, s ? s : "?");
	buf_addc(b, '|');
	return 0;
}

TEST(ndjson_lines)
{
	static const char text[] = "{\"status\":\"a\"}\n[1]\n{\"status\":\"b\"}\r\nnot json\n"
				   "{\"status\":\"c\"}\n{\"status\":\"half";
	for (size_t step = 1; step < sizeof(text); step++) {
		struct dk_lines l = {BUF_INIT};
		struct buf got = BUF_INIT;
		for (size_t off = 0; off < sizeof(text) - 1; off += step) {
			size_t n = sizeof(text) - 1 - off < step ? sizeof(text) - 1 - off : step;
			CHECK_INT(dk_lines_feed(&l, text + off, n, count_line, &got), 0);
		}
		buf_adds(&got, "");
		CHECK_STR(got.data, "a|b|c|");
		buf_release(&got);
		buf_release(&l.line);
	}
}

TEST_MAIN_BEGIN("docker_proto")
RUN(stdcopy_split_everywhere);
RUN(stdcopy_rejects_garbage);
RUN(endpoints);
RUN(filters_and_escaping);
RUN(error_mapping);
RUN(times);
RUN(ndjson_lines);
TEST_MAIN_END
