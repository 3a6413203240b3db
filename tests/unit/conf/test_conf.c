/* Validation, normalisation, spec hash and diff, and loading of the configuration. */
#include "core/config.h"
#include "test.h"
#include "util/util.h"

#include <unistd.h>

/*
 * Build one source; returns the conf or NULL with every diagnostic in *msg.
 * *msg is NULL or an earlier build()'s message, which is freed: a test may
 * reuse one variable (and the leak checker of `make asan` counts the rest).
 */
static struct conf *build(const char *text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"c.conf", text, strlen(text)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	free(*msg);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

/* The diagnostics of a configuration that must fail. */
static char *errs(const char *text)
{
	char *msg = NULL;
	struct conf *c = build(text, &msg);
	if (c) {
		conf_free(c);
		free(msg);
		return xstrdup("(valid)");
	}
	return msg;
}

#define CHECK_ERR(text, want)                                                                      \
	do {                                                                                       \
		autofree char *_e = errs(text);                                                    \
		if (!strstr(_e, want))                                                             \
			FAILF("for %s\n got: %s\nwant: %s", text, _e, want);                       \
	} while (0)

TEST(minimal_defaults)
{
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"forge\")", &msg);
	CHECK(c);
	autofree char *p = conf_print(c);
	CHECK_STR(p, "(host\n"
		     "  :storage (:driver dir)\n"
		     "  :ingress (:listen (\"0.0.0.0:80\")))\n"
		     "\n"
		     "(container web\n"
		     "  :kind native\n"
		     "  :image \"forge\"\n"
		     "  :hostname \"web\"\n"
		     "  :tty nil\n"
		     "  :network none\n"
		     "  :state running\n"
		     "  :restart no\n"
		     "  :snapshot-before-change t)\n");
	conf_free(c);
}

TEST(empty_is_valid)
{
	autofree char *msg = NULL;
	struct conf *c = build("; nothing\n", &msg);
	CHECK(c);
	CHECK_INT(c->ncontainers, 0);
	conf_free(c);
}

TEST(units)
{
	autofree char *a = conf_size_str(268435456);
	CHECK_STR(a, "256M");
	autofree char *b = conf_size_str(1536);
	CHECK_STR(b, "1536");
	autofree char *c = conf_size_str(3072);
	CHECK_STR(c, "3k");
}

TEST(units2)
{
	autofree char *a = conf_size_str(1000);
	CHECK_STR(a, "1000");
	autofree char *b = conf_size_str(1LL << 40);
	CHECK_STR(b, "1T");
	autofree char *c = conf_size_str(0);
	CHECK_STR(c, "0");
	autofree char *d = conf_duration_str(90LL * 1000000000);
	CHECK_STR(d, "90s");
	autofree char *e = conf_duration_str(5400LL * 1000000000);
	CHECK_STR(e, "90m");
	autofree char *f = conf_duration_str(86400LL * 1000000000);
	CHECK_STR(f, "1d");
	autofree char *g = conf_duration_str(1500000000);
	CHECK_STR(g, "1500ms");
	autofree char *h = conf_duration_str(0);
	CHECK_STR(h, "0s");
}

TEST(normalisation)
{
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"forge\" :limits (:memory 268435456 :cpus 2)"
			       " :health (:tcp 80 :interval \"1m30s\")"
			       " :workdir \"/srv//www/\" :env ((\"B\" . \"2\") (\"A\" . \"1\"))"
			       " :depends-on (z a) :restart (on-failure 3))"
			       "(container a :image \"forge\") (container z :image \"forge\")",
			       &msg);
	if (!c)
		FAILF("%s", msg);
	autofree char *p = ctr_spec_print(conf_container_find(c, "web"));
	CHECK(strstr(p, ":limits (:memory \"256M\" :cpus 2.0)") != NULL);
	CHECK(strstr(p, ":interval \"90s\"") != NULL);
	CHECK(strstr(p, ":workdir \"/srv/www\"") != NULL);
	CHECK(strstr(p, ":env ((\"A\" . \"1\") (\"B\" . \"2\"))") != NULL);
	CHECK(strstr(p, ":depends-on (a z)") != NULL);
	CHECK(strstr(p, ":restart (on-failure 3)") != NULL);
	/* Containers print sorted by name. */
	autofree char *all = conf_print(c);
	char *pa = strstr(all, "(container a"), *pw = strstr(all, "(container web"),
	     *pz = strstr(all, "(container z");
	CHECK(pa && pw && pz && pa < pw && pw < pz);
	conf_free(c);
}

TEST(unknown_key_did_you_mean)
{
	CHECK_ERR("(container web :imgae \"x\")",
		  "c.conf:1:16: container web: unknown key :imgae; did you mean :image?");
	CHECK_ERR("(container web :image \"x\" :dependson (a))",
		  "unknown key :dependson; did you mean :depends-on?");
	CHECK_ERR("(container web :image \"x\" :zzzzzz 1)", "unknown key :zzzzzz\n");
	CHECK_ERR("(container web :image \"x\" :limits (:memroy \"1G\"))",
		  ":limits: unknown key :memroy; did you mean :memory?");
	CHECK_ERR("(contianer web)", "unknown form (contianer ...); did you mean (container ...)?");
	CHECK_ERR("(container web image \"x\")",
		  "expected a keyword, got the symbol image; write :image");
}

TEST(types_and_values)
{
	CHECK_ERR("(container web :image \"x\" :limits (:memory \"12Q\"))",
		  "c.conf:1:44: container web: :limits :memory: invalid size \"12Q\"");
	CHECK_ERR("(container web :image \"x\" :limits (:memory \"1k\"))", "too small");
	CHECK_ERR("(container web :image \"x\" :health (:tcp 1 :interval \"10\"))",
		  ":health :interval: invalid duration \"10\"");
	CHECK_ERR("(container web :image \"x\" :port 0)",
		  ":port: port 0 is out of range; expected 1-65535");
	CHECK_ERR("(container web :image \"x\" :port \"80\")",
		  ":port: expected a port number 1-65535, got the string \"80\"");
	CHECK_ERR("(container web :image \"x\" :tty yes)",
		  ":tty: expected t or nil, got the symbol yes");
	CHECK_ERR("(container web :image \"x\" :command \"httpd\")",
		  ":command: expected a list of strings");
	CHECK_ERR("(container web :image \"x\" :env ((\"A\" \"B\")))",
		  ":env: expected a (\"NAME\" . \"value\") pair of strings, got a list");
	CHECK_ERR("(container web :image \"x\" :workdir \"srv\")",
		  ":workdir: invalid path \"srv\"");
	CHECK_ERR("(container web :image \"x\" :workdir \"/a/../b\")", ":workdir: invalid path");
	CHECK_ERR("(container web :image \"x\" :hostname \"a..b\")", ":hostname: invalid DNS name");
	CHECK_ERR("(container web :image \"Bad Ref\")", ":image: invalid image reference");
	CHECK_ERR("(container web)", "c.conf:1:12: container web: missing :image");
	CHECK_ERR("(container web :image \"x\" :restart sometimes)",
		  ":restart: expected no, always, on-failure or (on-failure N), got the symbol "
		  "sometimes");
	CHECK_ERR("(container web :image \"x\" :state paused)",
		  ":state: expected running or stopped");
	CHECK_ERR("(container web :image \"x\" :image \"y\")",
		  "c.conf:1:27: container web: :image: duplicate key; first given at 1:16");
	CHECK_ERR("(container web :image)", ":image: missing value after the key");
	CHECK_ERR("(container web :image \"x\" :volumes ((:bind \"/a\")))",
		  ":volumes: missing :path");
	CHECK_ERR("(container web :image \"x\" :volumes ((:bind \"/a\" :dataset \"d\" :path "
		  "\"/p\")))",
		  "expected exactly one of :bind or :dataset");
	CHECK_ERR("(container web :image \"x\" :volumes ((:dataset \"d\" :path \"/p\") (:dataset "
		  "\"e\" :path \"/p\")))",
		  "two volumes mounted at /p");
	CHECK_ERR(
		"(container web :image \"x\" :volumes ((:bind \"/a\" :path \"/p\" :quota \"1G\")))",
		":volumes :quota: only a :dataset volume takes it");
	CHECK_ERR("(container web :image \"x\" :health (:http \"/\"))",
		  ":health :http: no port to probe");
	CHECK_ERR("(container web :image \"x\" :health (:tcp 1 :cmd (\"x\")))",
		  "expected exactly one of :cmd, :http or :tcp");
	CHECK_ERR("(container web :image \"x\" :on ((:exitt \"x\")))",
		  ":on: unknown event :exitt; did you mean :exit?");
	CHECK_ERR("(container web :image \"x\" :on ((:every \"1h\")))",
		  ":on :every: expected (:every \"1h\" CMD)");
	CHECK_ERR("(container web :image \"x\" :on ((:exit \"x\" :recursive t)))",
		  "only :file-change takes :recursive");
	CHECK_ERR("(container web :image \"x\" :publish (\"80\"))",
		  ":publish: expected a port mapping");
	CHECK_ERR("(container web :image \"x\" :network (lan))",
		  ":network: no network named lan is declared");
	CHECK_ERR("(container web :image \"x\" :domain \"Web.lan\")",
		  ":domain: invalid domain \"Web.lan\": write it in lowercase");
	CHECK_ERR("(container web :image \"x\" :domain \"a;b\")",
		  ":domain: invalid domain \"a;b\": character ';' is not allowed");
	CHECK_ERR("(container web :image \"x\" :domain \"x } server {\")",
		  ":domain: invalid domain \"x } server {\"");
	CHECK_ERR("(container web :image \"x\" :domain \"w\" :port 80 :path \"/a;b\")",
		  ":path: invalid path \"/a;b\"");
	CHECK_ERR("(host :network (:subnet \"10.88.0.1/24\"))",
		  "has host bits set; expected the network address 10.88.0.0/24");
	CHECK_ERR("(host :network (:subnet \"10.88.0.0\"))", "invalid subnet");
	CHECK_ERR("(host :storage (:driver zfs :pool \"tank\"))",
		  "the zfs driver takes :pool and :root");
	CHECK_ERR("(host) (host)",
		  "c.conf:1:8: host: duplicate (host) form; first given at c.conf:1:1");
	CHECK_ERR("(image web)", "expected exactly one of :build");
	CHECK_ERR("(image web :from \"x:1\" :kind docker)", ":kind docker goes with :build");
	CHECK_ERR("(image web :build \"/srv/web\" :kind lxc)", ":kind");
	CHECK_ERR("(network bridge)", "bridge is reserved");
	CHECK_ERR("(network a :subnet \"10.88.0.0/16\")",
		  "network a: :subnet overlaps the host bridge's subnet");
	CHECK_ERR("(container -web :image \"x\")", "invalid name \"-web\"; expected a DNS label");
	CHECK_ERR("(container :image \"x\")", "container: missing the name");
	CHECK_ERR("\"x\"",
		  "configuration: expected a form like (container NAME ...), got the string \"x\"");
}

/* (image NAME :build DIR :kind docker): kept, printed, and no Cblockfile default. */
TEST(image_kind_docker)
{
	autofree char *msg = NULL;
	struct conf *c = build("(image web :build \"/srv/web\" :kind docker)", &msg);
	CHECK(c);
	if (!c)
		return;
	CHECK_INT(c->nimages, 1);
	CHECK(c->images[0]->docker);
	CHECK(c->images[0]->file == NULL);
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "(image web\n  :build \"/srv/web\"\n  :kind docker)") != NULL);
	conf_free(c);
}

TEST(accepts_full_language)
{
	autofree char *msg = NULL;
	struct conf *c = build(
		"(host :storage (:driver zfs :pool \"tank\" :root \"tank/clbsd\")"
		" :network (:bridge \"br0\" :subnet \"10.1.0.0/16\")"
		" :ingress (:listen (\"0.0.0.0:80\" \"[::]:80\") :tls-listen (\"0.0.0.0:443\")"
		" :default-domain \"home.lan\" :tls (:ca auto)))"
		"(network lan :subnet \"10.2.0.0/24\" :internal t)"
		"(image web :build \"/srv/web\" :args ((\"V\" . \"1\")))"
		"(image \"up:1.0\" :from \"nginx:1.25\")"
		"(container web :kind docker :image \"web\" :user 1000 :network (lan)"
		" :ip \"10.2.0.5\" :aliases (\"www\") :dns (\"10.2.0.1\")"
		" :publish (\"8080:80\" \"127.0.0.1:53:53/udp\") :domain (\"a.lan\" \"b\") :port 80"
		" :path \"/app\" :ingress (:websocket t :max-body \"10M\")"
		" :tls (:cert \"/c.pem\" :key \"/k.pem\") :storage (:quota \"10G\" :compression "
		"lz4)"
		" :snapshots (:every \"1d\" :keep 7) :snapshot-before-change t"
		" :health (:cmd (\"true\") :retries 5 :restart-unhealthy t)"
		" :on ((:start (\"logger\" \"up\")) (:oom \"x\") (:health (:exec \"sh\"))"
		"      (:file-change \"/etc\" \"y\" :recursive t :timeout \"5s\")))",
		&msg);
	if (!c)
		FAILF("%s", msg);
	CHECK_INT(c->host.driver, CONF_STORAGE_ZFS);
	CHECK_INT(c->nnetworks, 1);
	CHECK_INT(c->nimages, 2);
	const struct ctr_spec *w = conf_container_find(c, "web");
	CHECK(w);
	CHECK_INT(w->kind, CTR_KIND_DOCKER);
	CHECK_STR(w->user, "1000");
	CHECK_INT(w->npublish, 2);
	CHECK(w->publish[1].udp);
	CHECK_INT(w->nhooks, 4);
	CHECK_INT(w->hooks[2].cmd.type, CTR_CMD_EXEC);
	CHECK_INT(w->hooks[3].timeout_ns, 5000000000LL);
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "(image \"up:1.0\"\n  :from \"nginx:1.25\")") != NULL);
	CHECK(strstr(p, ":publish (\"8080:80/tcp\" \"127.0.0.1:53:53/udp\")") != NULL);
	CHECK(strstr(p, ":domain (\"a.lan\" \"b\")") != NULL);
	/* What prints reads back and prints the same. */
	autofree char *msg2 = NULL;
	struct conf *c2 = build(p, &msg2);
	if (!c2)
		FAILF("re-read: %s", msg2);
	autofree char *p2 = conf_print(c2);
	CHECK_STR(p2, p);
	conf_free(c2);
	conf_free(c);
}

TEST(collects_all_errors)
{
	autofree char *e = errs("(container a :image 1 :port 0 :tty 3)\n(container b :imag \"x\")");
	size_t lines = 0;
	for (const char *p = e; *p; p++)
		lines += *p == '\n';
	CHECK_INT(lines, 5); /* :image, :port, :tty; b: unknown key, missing :image */
}

TEST(duplicates_across_files)
{
	struct conf_source src[] = {
		{"main.conf", "(container web :image \"a\")", 26},
		{"conf.d/10.conf", "\n(container web :image \"b\")", 27},
	};
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *c = NULL;
	CHECK(conf_build(src, 2, &c, &d) < 0);
	autofree char *e = conf_diags_format(&d);
	CHECK_STR(e, "conf.d/10.conf:2:12: container web: duplicate name; first declared at "
		     "main.conf:1:12\n");
	conf_diags_release(&d);
}

TEST(depends_on)
{
	CHECK_ERR("(container web :image \"x\" :depends-on (dbb)) (container db :image \"x\")",
		  "c.conf:1:40: container web: :depends-on: no container named dbb; did you mean "
		  "db?");
	CHECK_ERR("(container web :image \"x\" :depends-on (db)) (container db :image \"x\" "
		  ":depends-on (web))",
		  "container web: :depends-on: dependency cycle db -> web -> db");
	CHECK_ERR("(container web :image \"x\" :depends-on (web))",
		  ":depends-on: dependency cycle web -> web");
	CHECK_ERR("(container web :image \"x\" :depends-on (db db)) (container db :image \"x\")",
		  ":depends-on: db is listed twice");
	/* An invalid container's name is not also reported as undeclared. */
	autofree char *e =
		errs("(container web :image \"x\" :depends-on (db)) (container db :port 0)");
	CHECK(strstr(e, "no container named") == NULL);
	/* A diamond is not a cycle. */
	autofree char *msg = NULL;
	struct conf *c =
		build("(container a :image \"x\" :depends-on (b c)) (container b :image \"x\" "
		      ":depends-on (d)) (container c :image \"x\" :depends-on (d)) "
		      "(container d :image \"x\")",
		      &msg);
	CHECK(c);
	conf_free(c);
}

/* (moved NAME :to :at): NAME is not declared, dependants are fine, never an error. */
TEST(moved_form)
{
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"x\") (container app :image \"x\" "
			       ":depends-on (web)) (moved web :to \"unix:/run/b.sock\" :at "
			       "\"2026-12-07T17:00:00Z\") (moved gone :to \"ssh://h\")",
			       &msg);
	if (!c)
		FAILF("%s", msg);
	CHECK(c && !conf_container_find(c, "web") && conf_container_find(c, "app"));
	const struct conf_moved *m = c ? conf_moved_find(c, "web") : NULL;
	CHECK(m && strcmp(m->to, "unix:/run/b.sock") == 0 && m->at &&
	      strcmp(m->at, "2026-12-07T17:00:00Z") == 0);
	CHECK(c && conf_moved_find(c, "gone") && !conf_moved_find(c, "app"));
	conf_free(c);
	CHECK_ERR("(moved web)", "expected (moved web :to \"DEST\" :at \"TIME\")");
	CHECK_ERR("(moved web :to 3)", ":to");
	CHECK_ERR("(moved web :to \"a\" :where \"b\")", "expected :to \"DEST\" and :at");
}

TEST(hash_and_diff)
{
	autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
	struct conf *a =
		build("(container web :image \"x\" :env ((\"A\" . \"1\")) :restart no)", &m1);
	struct conf *b = build("(container web :image \"x\" :env ((\"A\" . \"1\")) :restart always "
			       ":depends-on (db) :health (:tcp 1)) (container db :image \"x\")",
			       &m2);
	struct conf *c = build("(container web :image \"x\" :env ((\"A\" . \"2\")))", &m3);
	CHECK(a && b && c);
	const struct ctr_spec *wa = conf_container_find(a, "web");
	const struct ctr_spec *wb = conf_container_find(b, "web");
	const struct ctr_spec *wc = conf_container_find(c, "web");
	char ha[65], hb[65], hc[65];
	ctr_spec_hash(wa, ha);
	ctr_spec_hash(wb, hb);
	ctr_spec_hash(wc, hc);
	CHECK_INT(strlen(ha), 64);
	CHECK_STR(ha, hb); /* live changes only */
	CHECK(strcmp(ha, hc) != 0);
	struct ctr_spec_change *ch = NULL;
	size_t n = ctr_spec_diff(wa, wb, &ch);
	CHECK_INT(n, 3);
	CHECK_STR(ch[0].key, ":restart");
	CHECK(!ch[0].recreate);
	CHECK_STR(ch[1].key, ":depends-on");
	CHECK_STR(ch[2].key, ":health");
	free(ch);
	n = ctr_spec_diff(wa, wc, &ch);
	CHECK_INT(n, 1);
	CHECK_STR(ch[0].key, ":env");
	CHECK(ch[0].recreate);
	free(ch);
	n = ctr_spec_diff(wa, wa, &ch);
	CHECK_INT(n, 0);
	CHECK(ch == NULL);
	n = ctr_spec_diff(NULL, wa, &ch);
	CHECK(n > 3);
	free(ch);
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

static void write_file(const char *path, const char *text)
{
	struct clbsd_err err;
	fs_write_atomic(path, text, strlen(text), 0644, &err);
}

TEST(load)
{
	char dir[] = "/tmp/clbsd-conf-test.XXXXXX";
	CHECK(mkdtemp(dir));
	autofree char *main_file = xasprintf("%s/clbsd.conf", dir);
	autofree char *confd = xasprintf("%s/conf.d", dir);
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *c = NULL;
	/* Neither exists: an empty configuration. */
	CHECK_INT(conf_load(main_file, confd, &c, &d), 0);
	CHECK_INT(c->ncontainers, 0);
	conf_free(c);
	struct clbsd_err err;
	fs_mkdir_p(confd, 0755, &err);
	write_file(main_file, "(container web :image \"x\")");
	autofree char *f1 = xasprintf("%s/20-b.conf", confd);
	autofree char *f2 = xasprintf("%s/10-a.conf", confd);
	autofree char *f3 = xasprintf("%s/ignored.txt", confd);
	write_file(f1, "(container b :image \"x\")");
	write_file(f2, "(container a :image \"x\")");
	write_file(f3, "garbage (");
	c = NULL;
	CHECK_INT(conf_load(main_file, confd, &c, &d), 0);
	CHECK_INT(c->ncontainers, 3);
	CHECK_STR(c->files[0], main_file);
	CHECK_STR(c->files[1], f2);
	CHECK_STR(c->files[2], f1);
	conf_free(c);
	/* The same name in two conf.d files names both, in load order. */
	write_file(f1, "(container a :image \"x\")");
	c = NULL;
	CHECK(conf_load(main_file, confd, &c, &d) < 0);
	CHECK(c == NULL);
	CHECK_INT(d.n, 1);
	CHECK_STR(d.v[0].file, f1);
	CHECK(strstr(d.v[0].msg, f2) != NULL);
	conf_diags_release(&d);
	fs_rm_rf(dir, &err);
}

/* conf_load_digest() of the files as they are now, "" when the load fails. */
static void digest_of(const char *main_file, const char *confd, char out[65])
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *c = NULL;
	conf_load_digest(main_file, confd, &c, out, &d);
	conf_free(c);
	conf_diags_release(&d);
}

TEST(load_digest)
{
	char dir[] = "/tmp/clbsd-conf-test.XXXXXX";
	CHECK(mkdtemp(dir));
	autofree char *main_file = xasprintf("%s/clbsd.conf", dir);
	autofree char *confd = xasprintf("%s/conf.d", dir);
	autofree char *f1 = xasprintf("%s/10-a.conf", confd);
	autofree char *f2 = xasprintf("%s/20-b.conf", confd);
	autofree char *tmp = xasprintf("%s/.20-b.conf.tmp", confd);
	struct clbsd_err err;
	char none[65], empty_main[65], a[65], a2[65], b[65], ab[65], ba[65], x[65];
	digest_of(main_file, confd, none);
	CHECK_INT(strlen(none), 64);
	/* An empty main file is not a missing one. */
	write_file(main_file, "");
	digest_of(main_file, confd, empty_main);
	CHECK(strcmp(none, empty_main) != 0);
	fs_mkdir_p(confd, 0755, &err);
	write_file(main_file, "(container a :image \"x\")");
	digest_of(main_file, confd, a);
	/* The same bytes written again: the same digest. */
	write_file(main_file, "(container a :image \"x\")");
	digest_of(main_file, confd, a2);
	CHECK_STR(a, a2);
	/* A file conf_load() skips changes nothing. */
	write_file(tmp, "garbage (");
	digest_of(main_file, confd, x);
	CHECK_STR(a, x);
	/* An empty file added to conf.d changes it, and removing it brings it back. */
	write_file(f1, "");
	digest_of(main_file, confd, x);
	CHECK(strcmp(a, x) != 0);
	unlink(f1);
	digest_of(main_file, confd, x);
	CHECK_STR(a, x);
	/* One byte changed. */
	write_file(main_file, "(container a :image \"y\")");
	digest_of(main_file, confd, b);
	CHECK(strcmp(a, b) != 0);
	/* The same text moved from one file to the next is another load. */
	write_file(main_file, "");
	write_file(f1, "(container a :image \"x\")");
	write_file(f2, "");
	digest_of(main_file, confd, ab);
	write_file(f1, "");
	write_file(f2, "(container a :image \"x\")");
	digest_of(main_file, confd, ba);
	CHECK(strcmp(ab, ba) != 0);
	/* A rejected load has a digest too, and the same bytes the same one. */
	write_file(f2, "(container a");
	digest_of(main_file, confd, x);
	CHECK_INT(strlen(x), 64);
	digest_of(main_file, confd, b);
	CHECK_STR(x, b);
	fs_rm_rf(dir, &err);
}

TEST(example_validates)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *c = NULL;
	int r = conf_load("examples/homelab.conf", NULL, &c, &d);
	autofree char *e = conf_diags_format(&d);
	conf_diags_release(&d);
	if (r < 0)
		FAILF("%s", e);
	CHECK(c->ncontainers >= 3);
	conf_free(c);
}
TEST(network_checks)
{
	/* No host network: the default is none, and bridge is refused. */
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"forge\")", &msg);
	CHECK(c);
	CHECK(c->containers[0]->netmode == CTR_NET_NONE);
	conf_free(c);
	c = build("(host :network (:subnet \"10.88.0.0/24\")) (container web :image \"forge\")",
		  &msg);
	CHECK(c);
	CHECK(c->containers[0]->netmode == CTR_NET_BRIDGE);
	CHECK(c->host.network_set);
	conf_free(c);
	CHECK_ERR("(container web :image \"forge\" :network bridge)",
		  "container web: :network bridge needs the host's network");
	CHECK_ERR("(host :network ()) (container web :image \"forge\" :network host :publish "
		  "(\"8080:80\"))",
		  "container web: :publish needs a network, but :network is host");
	CHECK_ERR("(host :network ()) (container web :image \"forge\" :ip \"10.9.0.2\")",
		  "container web: :ip 10.9.0.2 is outside its network's subnet 10.88.0.0/24");
	CHECK_ERR("(host :network ()) (container web :image \"forge\" :ip \"10.88.0.1\")",
		  "container web: :ip 10.88.0.1 is reserved");
	CHECK_ERR("(host :network ()) (container a :image \"forge\" :publish (\"8080:80\")) "
		  "(container b :image \"forge\" :publish (\"127.0.0.1:8080:81\"))",
		  "container b: :publish: host port 8080/tcp is also published by container a");
	/* The host's bridge in a list with other networks. */
	c = build("(host :network ()) (network lan :subnet \"10.9.0.0/24\") "
		  "(container a :image \"forge\" :network (bridge lan) :ip \"10.88.0.9\")",
		  &msg);
	CHECK(c);
	conf_free(c);
	CHECK_ERR("(network lan :subnet \"10.9.0.0/24\") "
		  "(container a :image \"forge\" :network (bridge lan))",
		  "container a: :network lists bridge, which needs the host's network");
	/* Same port, other protocol: no clash. */
	c = build("(host :network ()) (container a :image \"forge\" :publish (\"53:53\")) "
		  "(container b :image \"forge\" :publish (\"53:53/udp\"))",
		  &msg);
	CHECK(c);
	conf_free(c);
}

/* :backup on a container and host-wide: read, printed, read back; errors at file:line:col. */
TEST(backup_key)
{
	autofree char *msg = NULL;
	struct conf *c = build("(host :backup (:to \"/srv/backup\"))\n"
			       "(container a :image \"x\")\n"
			       "(container b :image \"x\" :backup nil)\n"
			       "(container c :image \"x\" :backup (:every \"1h\" :keep (:daily 2) "
			       ":to \"unix:/run/b.sock\"))",
			       &msg);
	if (!c)
		FAILF("%s", msg);
	CHECK(c->host.backup.set && !c->host.backup.off);
	CHECK(c->host.backup.every_ns == 86400LL * 1000000000);
	CHECK_INT(c->host.backup.keep.monthly, 6);
	CHECK(!conf_container_find(c, "a")->backup.set);
	CHECK(conf_container_find(c, "b")->backup.off);
	const struct ctr_spec *cc = conf_container_find(c, "c");
	CHECK_INT(cc->backup.keep.daily, 2);
	CHECK_INT(cc->backup.keep.weekly, 0);
	CHECK_STR(cc->backup.to, "unix:/run/b.sock");
	autofree char *p = conf_print(c);
	CHECK(strstr(p, ":backup (:every \"1d\" :keep (:daily 7 :weekly 4 :monthly 6) :to "
			"\"/srv/backup\")") != NULL);
	CHECK(strstr(p, "  :backup nil") != NULL);
	autofree char *msg2 = NULL;
	struct conf *c2 = build(p, &msg2);
	if (!c2)
		FAILF("re-read: %s", msg2);
	autofree char *p2 = conf_print(c2);
	CHECK_STR(p2, p);
	conf_free(c2);
	conf_free(c);
	CHECK_ERR("(container a :image \"x\" :backup (:every \"1d\"))",
		  "c.conf:1:33: container a: :backup: expected :to");
	CHECK_ERR("(container a :image \"x\" :backup (:every \"5s\" :to \"/b\"))",
		  ":backup :every: expected at least 1m");
	CHECK_ERR("(container a :image \"x\" :backup (:to \"ftp://x\"))", ":backup :to: expected");
	CHECK_ERR("(container a :image \"x\" :backup (:to \"/b\" :keep (:daily 0)))",
		  "expected at least one backup kept");
	CHECK_ERR("(host :backup (:to \"ssh://nas:99999\"))",
		  "c.conf:1:20: host: :backup :to: expected a port");
	CHECK_ERR("(container a :image \"x\" :backup 7)", ":backup: expected a schedule");
}

TEST_MAIN_BEGIN("conf.conf")
RUN(minimal_defaults);
RUN(empty_is_valid);
RUN(units);
RUN(units2);
RUN(normalisation);
RUN(unknown_key_did_you_mean);
RUN(types_and_values);
RUN(image_kind_docker);
RUN(accepts_full_language);
RUN(collects_all_errors);
RUN(duplicates_across_files);
RUN(depends_on);
RUN(moved_form);
RUN(hash_and_diff);
RUN(load);
RUN(load_digest);
RUN(example_validates);
RUN(network_checks);
RUN(backup_key);
TEST_MAIN_END
