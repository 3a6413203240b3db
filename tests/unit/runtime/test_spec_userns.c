/* rt_spec's "userns" and a mount's "idmap": JSON round trip and refusals. */
#include "runtime/runtime.h"
#include "test.h"
#include "util/util.h"

#define BASE                                                                                       \
	"{\"name\":\"u\",\"argv\":[\"sh\"],\"cgroup\":\"clbsd/u\",\"rootfs\":{\"mode\":\"bind\","  \
	"\"lower\":\"/r\",\"target\":\"/t\"}"

TEST(round_trip)
{
	struct clbsd_err err;
	struct rt_spec s, s2;
	const char *j = BASE ",\"userns\":{\"uid\":100000000,\"gid\":200000000,\"count\":65536},"
			     "\"mounts\":[{\"source\":\"/v\",\"dest\":\"/d\",\"idmap\":true},"
			     "{\"source\":\"/h\",\"dest\":\"/e\"}]}";
	CHECK_INT(rt_spec_from_json(j, &s, &err), 0);
	CHECK_INT(s.userns.uid, 100000000);
	CHECK_INT(s.userns.gid, 200000000);
	CHECK_INT(s.userns.count, 65536);
	CHECK(s.mounts[0].idmap);
	CHECK(!s.mounts[1].idmap);
	autofree char *out = rt_spec_to_json(&s);
	CHECK_INT(rt_spec_from_json(out, &s2, &err), 0);
	CHECK_INT(s2.userns.uid, 100000000);
	CHECK_INT(s2.userns.gid, 200000000);
	CHECK_INT(s2.userns.count, 65536);
	CHECK(s2.mounts[0].idmap && !s2.mounts[1].idmap);
	rt_spec_release(&s);
	rt_spec_release(&s2);
}

TEST(absent_is_host_ids)
{
	struct clbsd_err err;
	struct rt_spec s;
	CHECK_INT(rt_spec_from_json(BASE "}", &s, &err), 0);
	CHECK_INT(s.userns.count, 0);
	autofree char *out = rt_spec_to_json(&s);
	CHECK(!strstr(out, "userns"));
	rt_spec_release(&s);
	CHECK_INT(rt_spec_from_json(BASE ",\"userns\":null}", &s, &err), 0);
	CHECK_INT(s.userns.count, 0);
	rt_spec_release(&s);
}

TEST(refused)
{
	static const char *const bad[] = {
		/* Host root (id 0) is never a container's. */
		BASE ",\"userns\":{\"uid\":0,\"gid\":100000,\"count\":65536}}",
		BASE ",\"userns\":{\"uid\":100000,\"gid\":100000,\"count\":0}}",
		/* Past the last valid id. */
		BASE ",\"userns\":{\"uid\":4294967000,\"gid\":100000,\"count\":65536}}",
		BASE ",\"userns\":{\"uid\":100000,\"gid\":100000,\"count\":65536,\"x\":1}}",
		BASE ",\"userns\":\"auto\"}",
		BASE ",\"mounts\":[{\"source\":\"/v\",\"dest\":\"/d\",\"idmap\":1}]}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct clbsd_err err;
		struct rt_spec s;
		if (rt_spec_from_json(bad[i], &s, &err) == 0) {
			rt_spec_release(&s);
			FAILF("accepted: %s", bad[i]);
		}
		CHECK(strstr(err.msg, "userns") || strstr(err.msg, "idmap"));
	}
}

TEST_MAIN_BEGIN("runtime.spec_userns")
RUN(round_trip);
RUN(absent_is_host_ids);
RUN(refused);
TEST_MAIN_END
