/*
 * The container spec (src/core/spec*.c): read from the form and from the
 * API's JSON into one struct, validation errors that name the key,
 * normalisation, the hash pinned across versions, the printing's round
 * trip, and the documentation generated from the key table.
 */
#include "conf/live.h"
#include "core/config.h"
#include "core/spec.h"
#include "test.h"
#include "util/json.h"
#include "util/util.h"

#include <signal.h>

static struct conf *build(const char *file, const char *text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {file, text, strlen(text)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

/* The one container of a configuration text (which must be valid). */
static struct conf *one(const char *text)
{
	autofree char *msg = NULL;
	struct conf *c = build("c.conf", text, &msg);
	if (!c || c->ncontainers != 1) {
		printf("not one valid container: %s\n", msg);
		abort();
	}
	return c;
}

static struct ctr_spec *from_json(const char *text, char *errmsg, int n)
{
	json_t *j = json_loads(text, 0, NULL);
	if (!j) {
		printf("bad test JSON: %s\n", text);
		abort();
	}
	struct ctr_spec *s = NULL;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (ctr_spec_from_json(j, &s, &err) < 0)
		snprintf(errmsg, (size_t)n, "%.200s", err.msg);
	json_decref(j);
	return s;
}

/*
 * Hashes of unchanged declarations computed by clbsd before the typed spec
 * (conf_container_hash() at 4d8c968): a host that upgrades must recreate
 * none of its declared containers.
 */
TEST(hash_pinned_across_versions)
{
	static const struct {
		const char *file, *name, *hash;
	} golden[] = {
		{"design-example", "db",
		 "c075abcb46f1d26f89daead7bfa02b1bc9441db76d54a8e3f2c4d48709a2461e"},
		{"design-example", "web",
		 "997aa0c20cbc17b7f6336beffe6bb6f9721ef3513fd4cc4a65f0f744431bda6f"},
		{"homelab", "db",
		 "c027e020bc9a48bbefb0d36c7ffd4d40ea0df2e65a9e05430467884b8d6732ac"},
		{"homelab", "toolbox",
		 "ce35567293f816079ea41e5bcc475425b9e47a40784208cd0e30b7fd43ca2378"},
		{"homelab", "web",
		 "28f14859b4f06409ba65bdc97dd07100ded2bf229db836b4754550161d269354"},
		{"homelab", "worker",
		 "46422ff537d424e32ff617ec64a62d60781cac8afeaad6e5d995ae001233a7dd"},
		{"normalise", "123",
		 "f5c8c1eeacaf13631b942fddd33378906560b330348b30ac48c216ec3ec2e482"},
		{"normalise", "a",
		 "f6b3b1366854a0d9571c0d2d5bd357c2c666c225d2680adcc2d5ec43c9e7f0f5"},
		{"normalise", "z-last",
		 "c3bf048e31dd13d6fb81fb454ab31cb953ca6a5f69bd829634cca08dae03f5da"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(golden); i++) {
		autofree char *path = xasprintf("tests/golden/conf/%s.conf", golden[i].file);
		autofree char *text = NULL, *msg = NULL;
		struct clbsd_err err;
		if (fs_read_file(path, &text, NULL, &err) < 0)
			FAILF("%s", err.msg);
		struct conf *c = build(path, text, &msg);
		if (!c)
			FAILF("%s: %s", path, msg);
		const struct ctr_spec *s = conf_container_find(c, golden[i].name);
		CHECK(s != NULL);
		char h[65];
		if (s) {
			ctr_spec_hash(s, h);
			CHECK_STR(h, golden[i].hash);
		}
		conf_free(c);
	}
}

/* A key added later changes no hash while it is unset; set, it recreates. */
TEST(stop_signal_hash_and_print)
{
	struct conf *a = one("(container w :image \"forge\")");
	struct conf *b = one("(container w :image \"forge\" :stop-signal \"TERM\")");
	struct conf *c = one("(container w :image \"forge\" :stop-signal \"SIGUSR1\")");
	struct conf *d = one("(container w :image \"forge\" :stop-signal 10)");
	char ha[65], hb[65], hc[65], hd[65];
	ctr_spec_hash(a->containers[0], ha);
	ctr_spec_hash(b->containers[0], hb);
	ctr_spec_hash(c->containers[0], hc);
	ctr_spec_hash(d->containers[0], hd);
	CHECK_STR(ha, hb); /* SIGTERM is the default */
	CHECK(strcmp(ha, hc) != 0);
	CHECK_STR(hc, hd); /* a name and its number are one signal */
	CHECK_INT(c->containers[0]->stop_signal, SIGUSR1);
	autofree char *p = ctr_spec_print(c->containers[0]);
	CHECK(strstr(p, "\n  :stop-signal \"SIGUSR1\"\n") != NULL);
	struct ctr_spec_change *ch = NULL;
	size_t n = ctr_spec_diff(a->containers[0], c->containers[0], &ch);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(ch[0].key, ":stop-signal");
		CHECK(ch[0].recreate);
	}
	free(ch);
	conf_free(a);
	conf_free(b);
	conf_free(c);
	conf_free(d);
}

TEST(form_errors_name_the_key)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"(container w :image \"forge\" :stop-signal \"SIGNOPE\")",
		 "c.conf:1:42: container w: :stop-signal: expected a signal like \"SIGTERM\""},
		{"(container w :image \"forge\" :stop-signal 99)",
		 ":stop-signal: expected a signal"},
		{"(container w :image \"forge\" :stop-sginal 9)", "unknown key :stop-sginal"},
		{"(container w :image \"forge\" :restart sometimes)",
		 ":restart: expected no, always"},
		{"(container w :image \"forge\" :limits (:memory \"1k\"))", ":limits :memory:"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		autofree char *msg = NULL;
		struct conf *c = build("c.conf", cases[i].text, &msg);
		CHECK(c == NULL);
		conf_free(c);
		if (!strstr(msg, cases[i].want))
			FAILF("%s: want \"%s\" in: %s", cases[i].text, cases[i].want, msg);
	}
}

TEST(json_decodes_every_api_key)
{
	char e[256] = "";
	struct ctr_spec *s =
		from_json("{\"name\":\"web\",\"image\":\"forge\",\"command\":[\"sh\",\"-c\",\"x\"],"
			  "\"env\":[\"A=1\",\"B=2\",\"A=3\"],\"workdir\":\"/srv\",\"user\":\"1:2\","
			  "\"hostname\":\"box\",\"tty\":true,\"stdin\":true,\"auto_remove\":false,"
			  "\"stop_signal\":\"INT\",\"userns\":\"auto\","
			  "\"volumes\":[{\"source\":\"/data\",\"dest\":\"/d\",\"readonly\":true},"
			  "\"cache:/c\",\"/h:/x:ro\"],\"memory\":\"64M\",\"pids\":10,\"cpus\":0.5,"
			  "\"restart\":\"on-failure:4\",\"storage\":{\"quota\":1048576},"
			  "\"network\":[\"a\",\"b\"],\"ip\":\"10.0.0.2\",\"aliases\":\"al\","
			  "\"dns\":[\"10.0.0.1\"],\"publish\":[\"8080:80\",\"127.0.0.1:53:53/udp\","
			  "\"[::1]:9:9\"]}",
			  e, sizeof(e));
	if (!s)
		FAILF("%s", e);
	CHECK_STR(s->name, "web");
	CHECK_STR(s->image, "forge");
	CHECK_INT(strv_len(s->command), 3);
	/* A repeated variable keeps its first place and takes the last value. */
	CHECK_INT(s->nenv, 2);
	CHECK_STR(s->env[0].key, "A");
	CHECK_STR(s->env[0].value, "3");
	CHECK(s->tty && s->stdin_open && !s->auto_remove);
	CHECK_INT(s->stop_signal, SIGINT);
	CHECK_INT(s->userns, CTR_USERNS_AUTO);
	CHECK_INT(s->nvolumes, 3);
	CHECK_INT(s->volumes[0].type, CTR_VOL_BIND);
	CHECK(s->volumes[0].ro);
	CHECK_INT(s->volumes[1].type, CTR_VOL_DATASET); /* a name: a named volume */
	CHECK_STR(s->volumes[1].source, "cache");
	CHECK(s->volumes[2].ro && s->volumes[2].type == CTR_VOL_BIND);
	CHECK_INT(s->memory, 64 << 20);
	CHECK_INT(s->pids, 10);
	CHECK_INT(s->restart, CTR_RESTART_ON_FAILURE);
	CHECK_INT(s->restart_max, 4);
	CHECK_INT(s->storage_quota, 1048576);
	CHECK_INT(s->netmode, CTR_NET_NAMED);
	CHECK_INT(strv_len(s->networks), 2);
	CHECK_INT(strv_len(s->aliases), 1);
	CHECK_INT(s->npublish, 3);
	autofree char *p0 = ctr_publish_str(&s->publish[0]);
	autofree char *p1 = ctr_publish_str(&s->publish[1]);
	autofree char *p2 = ctr_publish_str(&s->publish[2]);
	CHECK_STR(p0, "8080:80/tcp");
	CHECK_STR(p1, "127.0.0.1:53:53/udp");
	CHECK_STR(p2, "[::1]:9:9/tcp");
	/* Encoding and decoding again gives the same spec. */
	json_t *j = ctr_spec_to_json(s);
	autofree char *text = json_dumps(j, JSON_SORT_KEYS);
	json_decref(j);
	struct ctr_spec *s2 = from_json(text, e, sizeof(e));
	if (!s2)
		FAILF("round trip: %s: %s", text, e);
	json_t *j2 = ctr_spec_to_json(s2);
	autofree char *text2 = json_dumps(j2, JSON_SORT_KEYS);
	json_decref(j2);
	CHECK_STR(text2, text);
	autofree char *pa = ctr_spec_print(s), *pb = ctr_spec_print(s2);
	CHECK_STR(pa, pb);
	ctr_spec_free(s);
	ctr_spec_free(s2);
}

TEST(json_errors_name_the_key)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{"{\"image\":\"forge\",\"comand\":[\"true\"]}", "unknown key \"comand\""},
		{"{\"image\":\"forge\",\"storage\":{\"qouta\":1}}",
		 "unknown storage property \"qouta\""},
		{"{\"image\":\"forge\",\"volumes\":[{\"source\":\"/a\",\"dest\":\"/"
		 "b\",\"ro\":true}]}",
		 "unknown key \"ro\" in volume 1"},
		{"{\"image\":\"forge\",\"restart\":\"sometimes\"}",
		 "invalid restart policy \"sometimes\""},
		{"{\"image\":\"forge\",\"stop_signal\":\"NOPE\"}",
		 "\"stop_signal\" must be a signal"},
		{"{\"image\":\"forge\",\"tty\":\"yes\"}", "\"tty\" must be true or false"},
		{"{\"image\":\"forge\",\"memory\":\"1k\"}", "below the minimum of 4M"},
		{"{\"image\":\"forge\",\"volumes\":[\"relative/dir:/data\"]}",
		 "relative paths are refused"},
		{"{\"image\":\"forge\",\"publish\":[\"99999:1\"]}", "publish"},
		{"{\"image\":\"forge\",\"auto_remove\":true,\"restart\":\"always\"}",
		 "auto-remove (--rm) and a restart policy cannot be combined"},
		{"{\"image\":\"forge\",\"network\":\"none\",\"publish\":[\"80:80\"]}",
		 "publishing ports needs a network, but the container's network is none"},
		{"[1]", "must be a JSON object"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char e[256] = "";
		struct ctr_spec *s = from_json(cases[i].json, e, sizeof(e));
		CHECK(s == NULL);
		ctr_spec_free(s);
		if (!strstr(e, cases[i].want))
			FAILF("%s: want \"%s\" in: %s", cases[i].json, cases[i].want, e);
	}
}

/* The form and the API, asked for the same container, make the same spec. */
TEST(form_and_json_agree)
{
	struct conf *c = one("(host :network ())\n"
			     "(container web :image \"forge\" :command (\"sleep\" \"9\")\n"
			     "  :env ((\"A\" . \"1\")) :hostname \"web\" :stop-signal \"HUP\"\n"
			     "  :volumes ((:dataset \"data\" :path \"/data\"))\n"
			     "  :limits (:memory \"64M\" :pids 8) :network bridge\n"
			     "  :publish (\"8080:80\") :restart (on-failure 2))");
	char e[256] = "";
	struct ctr_spec *j = from_json(
		"{\"name\":\"web\",\"image\":\"forge\",\"command\":[\"sleep\",\"9\"],"
		"\"env\":[\"A=1\"],\"hostname\":\"web\",\"stop_signal\":1,\"volumes\":[\"data:/"
		"data\"],"
		"\"memory\":67108864,\"pids\":8,\"network\":\"bridge\",\"publish\":[\"8080:80\"],"
		"\"restart\":\"on-failure:2\"}",
		e, sizeof(e));
	if (!j)
		FAILF("%s", e);
	j->path = xstrdup("/");
	char ha[65], hb[65];
	ctr_spec_hash(c->containers[0], ha);
	ctr_spec_hash(j, hb);
	CHECK_STR(ha, hb);
	ctr_spec_free(j);
	conf_free(c);
}

/* Printing reads back to the same printing (the key table's two directions). */
TEST(print_round_trip)
{
	struct conf *c = one("(container w :image \"forge\" :stop-signal \"SIGRTMIN+2\""
			     " :tty t :user 1000 :userns auto :restart always)");
	autofree char *p = ctr_spec_print(c->containers[0]);
	struct conf *c2 = one(p);
	autofree char *p2 = ctr_spec_print(c2->containers[0]);
	CHECK_STR(p, p2);
	CHECK(strstr(p, ":stop-signal \"SIGRTMIN+2\"") != NULL);
	conf_free(c);
	conf_free(c2);
}

/* :integrity: read, normalised, printed back; errors at their position; no recreate. */
TEST(integrity_key)
{
	struct conf *c = one(
		"(container w :image \"forge\" :integrity (:every \"90s\""
		" :exclude (\"/var/log/\" \"/tmp\" \"/var/log\") :on-drift (\"logger\" \"x\")))");
	const struct ctr_spec *s = c->containers[0];
	CHECK(s->integrity_set);
	CHECK_INT(s->integrity_every_ns, 90LL * 1000000000);
	/* Sorted, unique, clean. */
	CHECK_STR(s->integrity_exclude[0], "/tmp");
	CHECK_STR(s->integrity_exclude[1], "/var/log");
	CHECK(s->integrity_exclude[2] == NULL);
	CHECK_STR(s->integrity_on_drift.argv[0], "logger");
	autofree char *p = ctr_spec_print(s);
	CHECK(strstr(p, ":integrity (:every \"90s\" :exclude (\"/tmp\" \"/var/log\")"
			" :on-drift (\"logger\" \"x\"))") != NULL);
	struct conf *c2 = one(p);
	autofree char *p2 = ctr_spec_print(c2->containers[0]);
	CHECK_STR(p, p2);
	/* Monitoring only: the container's hash does not change with it. */
	struct conf *c3 = one("(container w :image \"forge\")");
	char h1[65], h3[65];
	ctr_spec_hash(s, h1);
	ctr_spec_hash(c3->containers[0], h3);
	CHECK_STR(h1, h3);
	/* An empty form is allowed and printed as such. */
	struct conf *c4 = one("(container w :image \"forge\" :integrity ())");
	autofree char *p4 = ctr_spec_print(c4->containers[0]);
	CHECK(strstr(p4, ":integrity ()") != NULL);
	conf_free(c);
	conf_free(c2);
	conf_free(c3);
	conf_free(c4);
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"(container w :image \"forge\" :integrity (:every \"500ms\"))",
		 "c.conf:1:48: container w: :integrity :every: expected at least 1s"},
		{"(container w :image \"forge\" :integrity (:exclude (\"var/log\")))",
		 ":integrity :exclude"},
		{"(container w :image \"forge\" :integrity (:on-drift \"true\"))",
		 ":integrity: :on-drift needs :every"},
		{"(container w :image \"forge\" :integrity (:evry \"1h\"))", ":evry"},
		{"(container w :image \"forge\" :integrity \"1h\")", ":integrity"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		autofree char *msg = NULL;
		struct conf *cb = build("c.conf", bad[i].text, &msg);
		CHECK(cb == NULL);
		if (!strstr(msg, bad[i].want))
			FAILF("%s: want \"%s\" in: %s", bad[i].text, bad[i].want, msg);
	}
}

/*
 * :integrity :include: read, normalised, printed back; a path in both
 * lists is an error at the form's position, whichever list came first.
 */
TEST(integrity_include)
{
	struct conf *c = one("(container w :image \"forge\" :integrity (:include (\"/srv/\" "
			     "\"/data\" \"/srv\") :exclude (\"/var\")))");
	const struct ctr_spec *s = c->containers[0];
	CHECK_STR(s->integrity_include[0], "/data");
	CHECK_STR(s->integrity_include[1], "/srv");
	CHECK(s->integrity_include[2] == NULL);
	autofree char *p = ctr_spec_print(s);
	CHECK(strstr(p, ":integrity (:exclude (\"/var\") :include (\"/data\" \"/srv\"))") != NULL);
	struct conf *c2 = one(p);
	autofree char *p2 = ctr_spec_print(c2->containers[0]);
	CHECK_STR(p, p2);
	conf_free(c);
	conf_free(c2);
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"(container w :image \"forge\" :integrity (:include (\"/d\") :exclude (\"/d/\")))",
		 "c.conf:1:40: container w: :integrity: /d is in both :exclude and :include"},
		{"(container w :image \"forge\" :integrity (:exclude (\"/d\") :include (\"/d\")))",
		 ":integrity: /d is in both"},
		{"(container w :image \"forge\" :integrity (:include (\"d\")))",
		 ":integrity :include"},
		{"(container w :image \"forge\" :integrity (:include \"/d\"))",
		 ":integrity :include"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		autofree char *msg = NULL;
		struct conf *cb = build("c.conf", bad[i].text, &msg);
		CHECK(cb == NULL);
		if (!strstr(msg, bad[i].want))
			FAILF("%s: want \"%s\" in: %s", bad[i].text, bad[i].want, msg);
	}
}

/*
 * The API's "integrity" (clbsd run --integrity-exclude): decoded into the
 * same fields as the form's, encoded back, the same printing as the form
 * with the same values; :on-drift, only the form's, is refused by name.
 */
TEST(integrity_json)
{
	char e[256] = "";
	struct ctr_spec *s = from_json("{\"name\":\"w\",\"image\":\"forge\",\"integrity\":"
				       "{\"exclude\":[\"/var/log/\",\"/tmp\",\"/var/log\"],"
				       "\"include\":[\"/data\"]}}",
				       e, sizeof(e));
	if (!s)
		FAILF("%s", e);
	CHECK(s->integrity_set);
	CHECK_STR(s->integrity_exclude[0], "/tmp");
	CHECK_STR(s->integrity_exclude[1], "/var/log");
	CHECK(s->integrity_exclude[2] == NULL);
	CHECK_STR(s->integrity_include[0], "/data");
	json_t *j = ctr_spec_to_json(s);
	autofree char *text = json_dumps(json_object_get(j, "integrity"), JSON_SORT_KEYS);
	json_decref(j);
	CHECK_STR(text, "{\"exclude\": [\"/tmp\", \"/var/log\"], \"include\": [\"/data\"]}");
	ctr_spec_free(s);
	/* Clean paths only, as the form: the same printing and hash for the same paths. */
	s = from_json("{\"name\":\"w\",\"image\":\"forge\",\"integrity\":{\"every\":\"90m\","
		      "\"exclude\":[\"/var/log\",\"/tmp\"],\"include\":[\"/data\"]}}",
		      e, sizeof(e));
	if (!s)
		FAILF("%s", e);
	CHECK_INT(s->integrity_every_ns, 90LL * 60 * 1000000000);
	j = ctr_spec_to_json(s);
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "integrity"), "every")),
		  "90m");
	json_decref(j);
	struct conf *c = one("(container w :image \"forge\" :integrity (:every \"1h30m\" "
			     ":exclude (\"/tmp\" \"/var/log\") :include (\"/data\")))");
	autofree char *pj = ctr_spec_print_key(s, ":integrity");
	autofree char *pf = ctr_spec_print_key(c->containers[0], ":integrity");
	CHECK_STR(pj, pf);
	ctr_spec_free(s);
	conf_free(c);
	/* {} sets it (the defaults), null does not. */
	s = from_json("{\"image\":\"forge\",\"integrity\":{}}", e, sizeof(e));
	CHECK(s && s->integrity_set && !s->integrity_exclude);
	ctr_spec_free(s);
	s = from_json("{\"image\":\"forge\",\"integrity\":null}", e, sizeof(e));
	CHECK(s && !s->integrity_set);
	ctr_spec_free(s);
	static const struct {
		const char *body, *want;
	} bad[] = {
		{"{\"image\":\"forge\",\"integrity\":[\"/x\"]}", "\"integrity\" must be an object"},
		{"{\"image\":\"forge\",\"integrity\":{\"exclude\":\"/x\"}}",
		 "\"integrity\": \"exclude\" must be an array of absolute paths"},
		{"{\"image\":\"forge\",\"integrity\":{\"exclude\":[\"/a\",\"b/c\"]}}",
		 "\"integrity\": \"exclude\" item 2 must be an absolute path"},
		{"{\"image\":\"forge\",\"integrity\":{\"include\":[\"/a/../b\"]}}",
		 "\"integrity\": \"include\" item 1 must be an absolute path"},
		{"{\"image\":\"forge\",\"integrity\":{\"include\":[1]}}",
		 "\"integrity\": \"include\" item 1"},
		{"{\"image\":\"forge\",\"integrity\":{\"exclude\":[\"/d\"],\"include\":[\"/d\"]}}",
		 "\"integrity\": /d is in both \"exclude\" and \"include\""},
		{"{\"image\":\"forge\",\"integrity\":{\"every\":\"500ms\"}}",
		 "\"integrity\": \"every\" must be a duration of at least 1s"},
		{"{\"image\":\"forge\",\"integrity\":{\"every\":3600}}",
		 "\"integrity\": \"every\" must be a duration"},
		{"{\"image\":\"forge\",\"integrity\":{\"on_drift\":[\"x\"]}}",
		 "\"integrity\": \"on_drift\" is the configuration's"},
		{"{\"image\":\"forge\",\"integrity\":{\"exlude\":[]}}",
		 "\"integrity\": unknown key \"exlude\" (every, exclude, include)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char m[256] = "";
		struct ctr_spec *b = from_json(bad[i].body, m, sizeof(m));
		CHECK(b == NULL);
		if (!strstr(m, bad[i].want))
			FAILF("%s: want \"%s\" in: %s", bad[i].body, bad[i].want, m);
	}
}

/* PATCH "integrity": the API's object, or the form as `clbsd update --integrity` sends it. */
TEST(integrity_patch)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{"{\"integrity\": {\"exclude\": [\"/b\", \"/a\"]}}", "(:exclude (\"/a\" \"/b\"))"},
		{"{\"integrity\": \"(:every \\\"1h\\\" :on-drift (\\\"true\\\"))\"}",
		 "(:every \"1h\" :on-drift (\"true\"))"},
		{"{\"integrity\": null}", "()"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *j = json_loads(cases[i].body, 0, NULL);
		struct live_kv *kv = NULL;
		size_t n = 0;
		struct clbsd_err err;
		clbsd_err_init(&err);
		if (ctr_spec_patch_json(j, NULL, &kv, &n, &err) < 0)
			FAILF("%s: %s", cases[i].body, err.msg);
		json_decref(j);
		CHECK_INT(n, 1);
		CHECK_STR(kv[0].key, ":integrity");
		if (strcmp(kv[0].value, cases[i].want) != 0)
			FAILF("%s: got %s, want %s", cases[i].body, kv[0].value, cases[i].want);
		free(kv[0].value);
		free(kv);
	}
}

/* docs/config.md's key list is the table's (`make docs` rewrites it). */
TEST(docs_key_list_matches_table)
{
	autofree char *doc = NULL;
	struct clbsd_err err;
	if (fs_read_file("docs/config.md", &doc, NULL, &err) < 0)
		FAILF("%s", err.msg);
	const char *b = strstr(doc, "<!-- keys: begin");
	const char *e = b ? strstr(b, "<!-- keys: end -->") : NULL;
	const char *nl = b ? strchr(b, '\n') : NULL;
	if (!b || !e || !nl)
		FAILF("docs/config.md has no key list markers");
	autofree char *have = xstrndup(nl + 1, (size_t)(e - nl - 1));
	autofree char *want = ctr_spec_keys_markdown();
	if (strcmp(have, want) != 0)
		FAILF("docs/config.md's key list differs from src/core/spec_keys.c; run `make "
		      "docs`:\n%s",
		      want);
	autofree char *man = ctr_spec_keys_man();
	CHECK(strstr(man, ".B :stop\\-signal\n") != NULL);
}

/*
 * The keys a VPN or DNS container needs (:entrypoint, :labels, :cap-add,
 * :cap-drop, :sysctls, :devices): read from the form and the API alike,
 * normalised, refused with the key and position, hashed only when given.
 */
TEST(security_keys)
{
	static const char *const base = "(container w :image \"forge\")";
	struct conf *c0 = one(base);
	char h0[65];
	ctr_spec_hash(c0->containers[0], h0);
	conf_free(c0);

	struct conf *c = one("(container w :image \"forge\" :entrypoint ()\n"
			     "  :labels ((\"com.example.role\" . \"vpn\") (\"a\" \"1\"))\n"
			     "  :cap-add (NET_ADMIN cap_sys_time net_admin) :cap-drop mknod\n"
			     "  :sysctls ((\"net.ipv4.ip_forward\" \"1\"))\n"
			     "  :devices (\"/dev/net/tun\" \"/dev/fuse:r\"))");
	const struct ctr_spec *s = c->containers[0];
	CHECK(s->entrypoint && !s->entrypoint[0]);
	CHECK_INT(s->nlabels, 2);
	CHECK_STR(s->labels[0].key, "a");
	CHECK_INT(strv_len(s->cap_add), 2);
	CHECK_STR(s->cap_add[0], "net_admin");
	CHECK_STR(s->cap_drop[0], "mknod");
	CHECK_STR(s->sysctls[0].value, "1");
	CHECK_INT(s->ndevices, 2);
	CHECK_STR(s->devices[0].path, "/dev/net/tun");
	CHECK_STR(s->devices[0].perms, "rwm");
	CHECK_STR(s->devices[1].perms, "r");
	uint64_t m = ctr_caps_mask(s->cap_add, s->cap_drop);
	CHECK(m & (1ULL << 12));    /* net_admin */
	CHECK(!(m & (1ULL << 27))); /* mknod dropped */
	CHECK(m & (1ULL << 0));	    /* chown, a default */
	char h1[65];
	ctr_spec_hash(s, h1);
	CHECK(strcmp(h0, h1) != 0);
	autofree char *p = ctr_spec_print(s);
	CHECK(strstr(p, ":entrypoint ()") != NULL);
	CHECK(strstr(p, ":cap-add (net_admin sys_time)") != NULL);
	CHECK(strstr(p, ":devices (\"/dev/net/tun:/dev/net/tun:rwm\" \"/dev/fuse:/dev/fuse:r\")"));
	struct conf *c2 = one(p);
	autofree char *p2 = ctr_spec_print(c2->containers[0]);
	CHECK_STR(p, p2);
	conf_free(c2);

	/* The API's body says the same. */
	char e[256] = "";
	struct ctr_spec *j = from_json(
		"{\"name\":\"w\",\"image\":\"forge\",\"entrypoint\":\"\",\"labels\":{\"com.example."
		"role\":\"vpn\",\"a\":\"1\"},\"cap_add\":[\"NET_ADMIN\",\"SYS_TIME\"],\"cap_drop\":"
		"[\"MKNOD\"],\"sysctls\":{\"net.ipv4.ip_forward\":1},\"devices\":[\"/dev/net/tun\","
		"\"/dev/fuse:r\"]}",
		e, sizeof(e));
	if (!j)
		FAILF("%s", e);
	j->path = xstrdup("/");
	j->hostname = xstrdup("w");
	j->netmode = s->netmode; /* none here: no host :network */
	char hj[65];
	ctr_spec_hash(j, hj);
	CHECK_STR(hj, h1);
	ctr_spec_free(j);
	conf_free(c);

	/* Docker's rules for all. */
	char *all[] = {"all", NULL}, *na[] = {"net_admin", NULL};
	CHECK(ctr_caps_mask(all, na) == (ctr_caps_all() & ~(1ULL << 12)));
	CHECK(ctr_caps_mask(na, all) == (1ULL << 12));

	static const struct {
		const char *text, *want;
	} bad[] = {
		{"(container w :image \"f\" :cap-add (net_admn))",
		 "c.conf:1:35: container w: :cap-add: unknown capability \"net_admn\""},
		{"(container w :image \"f\" :sysctls ((\"kernel.panic\" . \"1\")))",
		 "c.conf:1:36: container w: :sysctls: \"kernel.panic\" is not namespaced"},
		{"(container w :image \"f\" :network host :sysctls ((\"net.core.somaxconn\" . "
		 "\"9\")))",
		 "c.conf:1:48: container w: :sysctls: net.* sysctls need the container's own "
		 "network namespace"},
		{"(container w :image \"f\" :devices (\"/etc/passwd\"))",
		 "c.conf:1:35: container w: :devices: device \"/etc/passwd\": both paths must be"},
		{"(container w :image \"f\" :devices (\"/dev/fuse:rwx\"))",
		 "device \"/dev/fuse:rwx\""},
		{"(container w :image \"f\" :labels ((\"a b\" . \"1\")))", "invalid label name"},
		{"(container w :image \"f\" :entrypoint 3)", ":entrypoint: expected a list"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		autofree char *msg = NULL;
		struct conf *x = build("c.conf", bad[i].text, &msg);
		CHECK(x == NULL);
		conf_free(x);
		if (!strstr(msg, bad[i].want))
			FAILF("%s: want \"%s\" in: %s", bad[i].text, bad[i].want, msg);
	}
	static const struct {
		const char *json, *want;
	} jbad[] = {
		{"{\"image\":\"f\",\"cap_add\":[\"NOPE\"]}", "unknown capability \"NOPE\""},
		{"{\"image\":\"f\",\"sysctls\":{\"vm.swappiness\":\"1\"}}", "is not namespaced"},
		{"{\"image\":\"f\",\"network\":\"host\",\"sysctls\":[\"net.ipv4.ip_forward=1\"]}",
		 "net.* sysctls need"},
		{"{\"image\":\"f\",\"devices\":[\"/dev/../etc\"]}", "below /dev"},
		{"{\"image\":\"f\",\"labels\":[\"novalue\"]}", "not a \"KEY=value\""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(jbad); i++) {
		char e2[256] = "";
		struct ctr_spec *x = from_json(jbad[i].json, e2, sizeof(e2));
		CHECK(x == NULL);
		ctr_spec_free(x);
		if (!strstr(e2, jbad[i].want))
			FAILF("%s: want \"%s\" in: %s", jbad[i].json, jbad[i].want, e2);
	}
}

/*
 * :limits is the live part: still in the hash (recorded hashes stay
 * valid), but a change to it alone is told apart by ctr_spec_hash_live()
 * and the diff says it applies in place.
 */
TEST(limits_change_in_place)
{
	struct conf *a = one("(container w :image \"forge\" :limits (:memory \"64M\"))");
	struct conf *b = one("(container w :image \"forge\" :limits (:memory \"256M\" :pids 9))");
	struct conf *c = one("(container w :image \"forge\" :env ((\"K\" . \"v\")) "
			     ":limits (:memory \"256M\"))");
	const struct ctr_spec *sa = a->containers[0], *sb = b->containers[0],
			      *sc = c->containers[0];
	char ha[65], hb[65], hlive[65];
	ctr_spec_hash(sa, ha);
	ctr_spec_hash(sb, hb);
	CHECK(strcmp(ha, hb) != 0);
	/* b with a's limits is a: only the live part differs. */
	struct ctr_live la;
	ctr_spec_live(sa, &la);
	CHECK_INT(la.memory, 64 << 20);
	ctr_spec_hash_live(sb, &la, hlive);
	CHECK_STR(hlive, ha);
	/* c also changes :env: a recreate. */
	ctr_spec_hash_live(sc, &la, hlive);
	CHECK(strcmp(hlive, ha) != 0);
	struct ctr_spec_change *ch = NULL;
	size_t n = ctr_spec_diff(sa, sb, &ch);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(ch[0].key, ":limits");
		CHECK(!ch[0].recreate);
		CHECK(ch[0].in_place);
	}
	free(ch);
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

/* The keys a PATCH cannot change are refused by name, with the reason. */
TEST(patch_refuses_api_only_keys)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{"{\"stdin\": true}", "\"stdin\" cannot be changed: whether standard input"},
		/* after a limit too (it once slipped through behind "memory") */
		{"{\"memory\": \"64M\", \"stdin\": true}", "\"stdin\" cannot be changed"},
		{"{\"auto_remove\": true}", "\"auto_remove\" cannot be changed: a declared"},
		{"{\"name\": \"other\"}", "\"name\" cannot be changed: a container is not renamed"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *j = json_loads(cases[i].body, 0, NULL);
		struct live_kv *kv = NULL;
		size_t n = 0;
		struct clbsd_err err;
		clbsd_err_init(&err);
		CHECK(ctr_spec_patch_json(j, NULL, &kv, &n, &err) < 0);
		if (!strstr(err.msg, cases[i].want))
			FAILF("%s: %s", cases[i].body, err.msg);
		json_decref(j);
	}
	/* The limits of a clbsd run container: over its own, null lifts one. */
	struct ctr_live live = {.memory = 64 << 20, .cpus = 1, .pids = 10};
	json_t *j = json_loads("{\"memory\": \"128M\", \"pids\": null}", 0, NULL);
	struct clbsd_err err;
	CHECK_INT(ctr_spec_limits_json(j, &live, &err), 0);
	CHECK_INT(live.memory, 128 << 20);
	CHECK(live.cpus == 1);
	CHECK_INT(live.pids, 0);
	json_decref(j);
	j = json_loads("{\"memory\": \"1k\", \"restart\": \"always\"}", 0, NULL);
	CHECK(ctr_spec_limits_json(j, &live, &err) < 0);
	CHECK_INT(live.memory, 128 << 20);
	json_decref(j);
}

TEST_MAIN_BEGIN("ctr_spec")
RUN(hash_pinned_across_versions);
RUN(stop_signal_hash_and_print);
RUN(form_errors_name_the_key);
RUN(json_decodes_every_api_key);
RUN(json_errors_name_the_key);
RUN(form_and_json_agree);
RUN(security_keys);
RUN(print_round_trip);
RUN(integrity_key);
RUN(integrity_include);
RUN(integrity_json);
RUN(integrity_patch);
RUN(docs_key_list_matches_table);
RUN(limits_change_in_place);
RUN(patch_refuses_api_only_keys);
TEST_MAIN_END
