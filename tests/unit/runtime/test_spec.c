#include "test.h"
#include "runtime/runtime.h"
#include "storage/storage.h"
#include "util/util.h"

#include <errno.h>

static const char *full_spec =
	"{\"name\":\"web\",\"hostname\":\"web.home.lan\",\"argv\":[\"/bin/httpd\",\"-f\"],"
	"\"env\":[\"PATH=/bin\",\"GREETING=hello world\"],\"cwd\":\"/srv\",\"uid\":1000,"
	"\"gid\":100,\"tty\":true,\"stdin_open\":true,"
	"\"rootfs\":{\"mode\":\"overlay\",\"lower\":\"/var/lib/clbsd/images/a/rootfs\","
	"\"upper\":\"/var/lib/clbsd/containers/web/upper\","
	"\"work\":\"/var/lib/clbsd/containers/web/work\","
	"\"target\":\"/var/lib/clbsd/containers/web/rootfs\",\"readonly\":true},"
	"\"mounts\":[{\"source\":\"/srv/data\",\"dest\":\"/data\",\"readonly\":true},"
	"{\"source\":\"/etc/resolv.conf\",\"dest\":\"/etc/resolv.conf\"}],"
	"\"limits\":{\"memory\":268435456,\"pids\":128,\"cpus\":0.5},"
	"\"cgroup\":\"clbsd/web\",\"volume_dirs\":[\"/var/lib/db\",\"/logs\"]}";

static void check_full(const struct rt_spec *s, int *ok)
{
	*ok = 0;
	if (strcmp(s->name, "web") || strcmp(s->hostname, "web.home.lan"))
		return;
	if (strv_len(s->argv) != 2 || strcmp(s->argv[0], "/bin/httpd") || strcmp(s->argv[1], "-f"))
		return;
	if (strv_len(s->env) != 2 || strcmp(s->env[1], "GREETING=hello world"))
		return;
	if (strcmp(s->cwd, "/srv") || s->uid != 1000 || s->gid != 100 || !s->tty || !s->stdin_open)
		return;
	if (strcmp(s->rootfs.mode, "overlay") || !s->rootfs.readonly ||
	    strcmp(s->rootfs.upper, "/var/lib/clbsd/containers/web/upper") ||
	    strcmp(s->rootfs.target, "/var/lib/clbsd/containers/web/rootfs"))
		return;
	if (s->n_mounts != 2 || strcmp(s->mounts[0].dest, "/data") || !s->mounts[0].readonly ||
	    s->mounts[1].readonly || strcmp(s->mounts[1].source, "/etc/resolv.conf"))
		return;
	if (s->limits.memory != 268435456 || s->limits.pids != 128 || s->limits.cpus != 0.5)
		return;
	if (strcmp(s->cgroup, "clbsd/web"))
		return;
	/* The image's VOLUME paths the runtime makes. */
	if (strv_len(s->volume_dirs) != 2 || strcmp(s->volume_dirs[0], "/var/lib/db") ||
	    strcmp(s->volume_dirs[1], "/logs"))
		return;
	*ok = 1;
}

TEST(round_trip)
{
	struct clbsd_err err;
	struct rt_spec s, s2;
	int ok;
	CHECK_INT(rt_spec_from_json(full_spec, &s, &err), 0);
	check_full(&s, &ok);
	CHECK(ok);
	char *json = rt_spec_to_json(&s);
	rt_spec_release(&s);
	CHECK(s.name == NULL);
	CHECK_INT(rt_spec_from_json(json, &s2, &err), 0);
	free(json);
	check_full(&s2, &ok);
	CHECK(ok);
	rt_spec_release(&s2);
}

TEST(defaults)
{
	struct clbsd_err err;
	struct rt_spec s;
	CHECK_INT(rt_spec_from_json(
			  "{\"name\":\"db\",\"argv\":[\"sh\"],\"cgroup\":\"clbsd/db\","
			  "\"rootfs\":{\"mode\":\"bind\",\"lower\":\"/r\",\"target\":\"/t\"}}",
			  &s, &err),
		  0);
	CHECK_STR(s.hostname, "db");
	rt_spec_release(&s);
	/* Near misses of the reserved paths are fine. */
	CHECK_INT(rt_spec_from_json(
			  "{\"name\":\"db\",\"argv\":[\"sh\"],\"cgroup\":\"clbsd/db\","
			  "\"rootfs\":{\"mode\":\"bind\",\"lower\":\"/r\",\"target\":\"/t\"},"
			  "\"mounts\":[{\"source\":\"/a\",\"dest\":\"/process\"},"
			  "{\"source\":\"/a\",\"dest\":\"/dev/shm\"}]}",
			  &s, &err),
		  0);
	rt_spec_release(&s);
	CHECK_INT(rt_spec_from_json(
			  "{\"name\":\"db\",\"argv\":[\"sh\"],\"cgroup\":\"clbsd/db\","
			  "\"rootfs\":{\"mode\":\"bind\",\"lower\":\"/r\",\"target\":\"/t\"}}",
			  &s, &err),
		  0);
	CHECK_STR(s.cwd, "/");
	CHECK(s.env && s.env[0] == NULL);
	CHECK_INT(s.n_mounts, 0);
	CHECK_INT(s.limits.memory, 0);
	CHECK(!s.tty && !s.rootfs.readonly);
	CHECK(s.rootfs.upper == NULL);
	char *json = rt_spec_to_json(&s);
	CHECK(strstr(json, "\"upper\"") == NULL);
	free(json);
	rt_spec_release(&s);
}

/* Replace the first occurrence of `from` in the full spec by `to` and parse. */
static int parse_edit(const char *from, const char *to, struct clbsd_err *err)
{
	const char *p = strstr(full_spec, from);
	if (!p)
		return 12345;
	struct buf b = BUF_INIT;
	buf_add(&b, full_spec, (size_t)(p - full_spec));
	buf_adds(&b, to);
	buf_adds(&b, p + strlen(from));
	struct rt_spec s;
	memset(&s, 0x5a, sizeof(s));
	int rc = rt_spec_from_json(b.data, &s, err);
	buf_release(&b);
	if (rc == 0)
		rt_spec_release(&s);
	return rc;
}

#define CHECK_BAD(from, to, needle)                                                                \
	do {                                                                                       \
		struct clbsd_err e_;                                                               \
		clbsd_err_init(&e_);                                                               \
		int rc_ = parse_edit(from, to, &e_);                                               \
		if (rc_ != -EINVAL)                                                                \
			FAILF("%s -> %s: rc %d (%s)", from, to, rc_, e_.msg);                      \
		if (e_.kind != CLBSD_E_INVALID || !strstr(e_.msg, needle))                         \
			FAILF("%s -> %s: message \"%s\" lacks \"%s\"", from, to, e_.msg, needle);  \
	} while (0)

TEST(validation)
{
	CHECK_BAD("[\"/bin/httpd\",\"-f\"]", "[]", "\"argv\": expected a non-empty command");
	CHECK_BAD("[\"/bin/httpd\",\"-f\"]", "[\"\"]", "\"argv\"");
	CHECK_BAD("[\"/bin/httpd\",\"-f\"]", "[\"a\",3]", "\"argv[1]\"");
	CHECK_BAD("\"cwd\":\"/srv\"", "\"cwd\":\"srv\"", "\"cwd\"");
	CHECK_BAD("\"cwd\":\"/srv\"", "\"cwd\":\"/srv/../etc\"", "\"cwd\"");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"/data/../../x\"", "\"mounts[0].dest\"");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"data\"", "\"mounts[0].dest\"");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"/\"", "\"mounts[0].dest\"");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"/proc/sys\"", "reserved");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"/sys\"", "reserved");
	CHECK_BAD("\"dest\":\"/data\"", "\"dest\":\"/dev\"", "reserved");
	CHECK_BAD("\"source\":\"/etc/resolv.conf\"", "\"source\":\"resolv.conf\"",
		  "\"mounts[1].source\": expected an absolute host path");
	CHECK_BAD("\"source\":\"/srv/data\",", "", "\"mounts[0].source\": missing");
	CHECK_BAD("\"mode\":\"overlay\"", "\"mode\":\"zfs\"", "\"rootfs.mode\"");
	CHECK_BAD("\"upper\":\"/var/lib/clbsd/containers/web/upper\",", "", "\"rootfs.upper\"");
	CHECK_BAD("\"lower\":\"/var/lib", "\"lower\":\"/var/l,ib", "\"rootfs.lower\"");
	CHECK_BAD("\"name\":\"web\"", "\"name\":\"Web\"", "\"name\"");
	CHECK_BAD("\"cgroup\":\"clbsd/web\"", "\"cgroup\":\"../web\"", "\"cgroup\"");
	CHECK_BAD("\"cgroup\":\"clbsd/web\"", "\"cgroup\":\"/clbsd/web\"", "\"cgroup\"");
	CHECK_BAD("\"uid\":1000", "\"uid\":-1", "\"uid\": out of range");
	CHECK_BAD("\"uid\":1000", "\"uid\":\"root\"", "\"uid\": expected an integer");
	CHECK_BAD("\"tty\":true", "\"tty\":1", "\"tty\"");
	CHECK_BAD("\"GREETING=hello world\"", "\"GREETING\"", "\"env[1]\"");
	CHECK_BAD("\"cpus\":0.5", "\"cpus\":-1", "\"limits.cpus\"");
	CHECK_BAD("\"pids\":128", "\"pids\":128,\"swap\":1", "unknown key \"limits.swap\"");
	CHECK_BAD("\"uid\":1000", "\"user\":1000", "unknown key \"user\"");
	CHECK_BAD("\"uid\":1000", "\"uid\":1000,\"uid\":1", "line 1");
	CHECK_BAD("\"name\":\"web\",", "", "\"name\": missing");
	CHECK_BAD("\"/logs\"]", "\"logs\"]", "\"volume_dirs\": expected an array of absolute");
	CHECK_BAD("\"/logs\"]", "\"/a/../../etc\"]", "\"volume_dirs\"");
	CHECK_BAD("\"/logs\"]", "\"/\"]", "\"volume_dirs\"");
	CHECK_BAD("\"/logs\"]", "1]", "\"volume_dirs\"");
}

TEST(out_untouched_on_error)
{
	struct clbsd_err err;
	struct rt_spec s;
	memset(&s, 0x5a, sizeof(s));
	CHECK(rt_spec_from_json("{\"name\":\"x\",\"argv\":[]}", &s, &err) < 0);
	CHECK_INT(((unsigned char *)&s)[0], 0x5a);
	CHECK(rt_spec_from_json("not json", &s, &err) < 0);
	CHECK(strstr(err.msg, "runtime spec") != NULL);
}

TEST_MAIN_BEGIN("runtime_spec")
RUN(round_trip);
RUN(defaults);
RUN(validation);
RUN(out_untouched_on_error);
TEST_MAIN_END
