/*
 * The override form (how a live change amends a declared container) and the
 * daemon-owned conf.d/90-live.conf that records live changes.
 */
#include "core/config.h"
#include "conf/live.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* Build two sources (main.conf, live.conf); NULL with the diagnostics in *msg. */
static struct conf *build2(const char *main_text, const char *live_text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src[2] = {
		{"main.conf", main_text, strlen(main_text)},
		{"live.conf", live_text, strlen(live_text)},
	};
	struct conf *c = NULL;
	int r = conf_build(src, 2, &c, &d);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

static const char decl[] = "(container web :image \"forge\")\n"
			   "(container db :image \"forge\" :state stopped)\n";

TEST(override_applies)
{
	autofree char *msg = NULL;
	struct conf *c =
		build2(decl, "(override web :state stopped)\n(override db :state running)", &msg);
	if (!c)
		FAILF("rejected: %s", msg);
	CHECK_INT(conf_container_find(c, "web")->state, CTR_DESIRED_STOPPED);
	CHECK_INT(conf_container_find(c, "db")->state, CTR_DESIRED_RUNNING);
	/* The effective state prints; the override form itself does not. */
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "(container web\n"));
	CHECK(!strstr(p, "override"));
	/* The printed form reads back to itself. */
	autofree char *msg2 = NULL;
	struct conf *c2 = build2(p, "", &msg2);
	CHECK(c2);
	autofree char *p2 = conf_print(c2);
	CHECK_STR(p2, p);
	CHECK_INT(conf_container_find(c2, "web")->state, CTR_DESIRED_STOPPED);
	conf_free(c2);
	conf_free(c);
}

TEST(override_later_wins)
{
	autofree char *msg = NULL;
	/* In load order: the main file's override, then live.conf's. */
	struct conf *c = build2("(override web :state running)\n(container web :image \"forge\")",
				"(override web :state stopped)\n", &msg);
	if (!c)
		FAILF("rejected: %s", msg);
	CHECK_INT(conf_container_find(c, "web")->state, CTR_DESIRED_STOPPED);
	/* An override does not touch the spec hash: :state applies live. */
	autofree char *msg2 = NULL;
	struct conf *plain = build2(decl, "", &msg2);
	CHECK(plain);
	char h1[65], h2[65];
	ctr_spec_hash(conf_container_find(c, "web"), h1);
	ctr_spec_hash(conf_container_find(plain, "web"), h2);
	CHECK_STR(h1, h2);
	conf_free(plain);
	conf_free(c);
}

#define CHECK_ERR2(live, want)                                                                     \
	do {                                                                                       \
		autofree char *_m = NULL;                                                          \
		struct conf *_c = build2(decl, live, &_m);                                         \
		if (_c) {                                                                          \
			conf_free(_c);                                                             \
			FAILF("accepted %s", live);                                                \
		}                                                                                  \
		if (!strstr(_m, want))                                                             \
			FAILF("for %s\n got: %s\nwant: %s", live, _m, want);                       \
	} while (0)

TEST(override_errors)
{
	CHECK_ERR2("\n  (override wbe :state stopped)",
		   "live.conf:2:13: override wbe: no container named wbe is declared (did you "
		   "mean web?); an override amends a declared container");
	CHECK_ERR2("(override cache :state stopped)",
		   "live.conf:1:11: override cache: no container named cache is declared; ");
	/* A value is checked by the container's reader, at the override's position. */
	CHECK_ERR2("(override web :state paused)",
		   "live.conf:1:22: container web: :state: expected running or stopped, got the "
		   "symbol paused");
	CHECK_ERR2("(override web :port 70000)", "live.conf:1:21: container web: :port");
	CHECK_ERR2("(override web)", "live.conf:1:11: override web: changes nothing; expected a "
				     "key to override, like :state stopped");
	/* Any key of the container form may be overridden; others are unknown. */
	CHECK_ERR2("(override web :imgae \"x\")", "override web: unknown key :imgae");
	CHECK_ERR2("(override :state stopped)", "override: missing the name");
	CHECK_ERR2("(overide web :state stopped)",
		   "unknown form (overide ...); did you mean (override ...)?");
	CHECK_ERR2("(frob web)",
		   "expected host, container, image, network, override, undeclare or moved");
}

TEST(override_amends_any_key)
{
	autofree char *m = NULL;
	struct conf *c = build2("(container web :image \"forge\" :restart no :limits (:cpus 1))",
				"(override web :restart always :limits (:memory \"256M\"))\n"
				"(override web :restart on-failure)",
				&m);
	CHECK(c);
	if (!c)
		return;
	const struct ctr_spec *s = conf_container_find(c, "web");
	CHECK_INT(s->restart, CTR_RESTART_ON_FAILURE);
	CHECK_INT(s->memory, 256LL << 20);
	CHECK(s->cpus == 0); /* :limits is one key: the override's replaces the file's */
	conf_free(c);
}

TEST(override_of_invalid_container_does_not_cascade)
{
	autofree char *m = NULL;
	struct conf *c =
		build2("(container web :imgae \"forge\")", "(override web :state stopped)", &m);
	CHECK(!c);
	CHECK(strstr(m, "unknown key :imgae"));
	CHECK(!strstr(m, "no container named"));
}

TEST(stale_live_record_ignored)
{
	/* conf.d/90-live.conf is the daemon's: a record of a container no longer declared is dropped. */
	struct conf_diags d = CONF_DIAGS_INIT;
	const char *live = "(override gone :state stopped)\n(override web :state stopped)\n";
	struct conf_source src[2] = {
		{"main.conf", decl, strlen(decl)},
		{"/etc/clbsd/conf.d/90-live.conf", live, strlen(live)},
	};
	struct conf *c = NULL;
	int r = conf_build(src, 2, &c, &d);
	autofree char *m = conf_diags_format(&d);
	conf_diags_release(&d);
	if (r != 0)
		FAILF("refused: %s", m);
	CHECK(conf_container_find(c, "web")->state == CTR_DESIRED_STOPPED);
	conf_free(c);
}

/* ---- 90-live.conf ---- */

struct tmp {
	char dir[64];
	char *main_file, *confd, *live;
};

static void tmp_init(struct tmp *t)
{
	strcpy(t->dir, "/tmp/clbsd-test-live.XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	t->main_file = xasprintf("%s/clbsd.conf", t->dir);
	t->confd = xasprintf("%s/conf.d", t->dir);
	t->live = xasprintf("%s/conf.d/90-live.conf", t->dir);
	struct clbsd_err err;
	if (fs_write_atomic(t->main_file, decl, strlen(decl), 0644, &err) < 0)
		abort();
}

static void tmp_release(struct tmp *t)
{
	struct clbsd_err err;
	fs_rm_rf(t->dir, &err);
	free(t->main_file);
	free(t->confd);
	free(t->live);
}

static char *slurp(const char *path)
{
	char *s = NULL;
	size_t n;
	struct clbsd_err err;
	if (fs_read_file(path, &s, &n, &err) < 0)
		return NULL;
	return s;
}

/* The forms of the file, without the header comment. */
static const char *forms_of(const char *text)
{
	const char *p = strstr(text, "\n\n");
	return p ? p + 2 : text;
}

/* Load the whole configuration and return the state of `name`, or -1. */
static int loaded_state(const struct tmp *t, const char *name, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *c = NULL;
	int r = conf_load(t->main_file, t->confd, &c, &d);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	if (r < 0)
		return -1;
	const struct ctr_spec *ct = conf_container_find(c, name);
	int s = ct ? (int)ct->state : -1;
	conf_free(c);
	return s;
}

static ino_t inode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

TEST(set_change_clear)
{
	struct tmp t;
	tmp_init(&t);
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;

	/* conf.d does not exist yet: set creates it. */
	CHECK_INT(live_set_state(t.confd, "web", "stopped", &err), 0);
	autofree char *a = slurp(t.live);
	CHECK(a);
	CHECK(strncmp(a, ";;; Live changes, written by clbsdd.", 36) == 0);
	CHECK(strstr(a, "clbsdd owns this file"));
	CHECK_STR(forms_of(a), "(override web :state stopped)\n");
	CHECK_INT(loaded_state(&t, "web", &m1), CTR_DESIRED_STOPPED);

	/* A second container, then a change of the first: one form each. */
	CHECK_INT(live_set_state(t.confd, "db", "running", &err), 0);
	CHECK_INT(live_set_state(t.confd, "web", "running", &err), 0);
	autofree char *b = slurp(t.live);
	CHECK_STR(forms_of(b), "(override web :state running)\n(override db :state running)\n");
	CHECK_INT(loaded_state(&t, "db", &m2), CTR_DESIRED_RUNNING);

	/* The same change again does not rewrite the file (no reload is triggered). */
	ino_t before = inode_of(t.live);
	CHECK_INT(live_set_state(t.confd, "web", "running", &err), 0);
	CHECK_INT(inode_of(t.live), before);

	/* Clear: the declaration applies again (db is declared stopped). */
	CHECK_INT(live_clear_state(t.confd, "db", &err), 0);
	autofree char *c = slurp(t.live);
	CHECK_STR(forms_of(c), "(override web :state running)\n");
	CHECK_INT(loaded_state(&t, "db", &m3), CTR_DESIRED_STOPPED);
	CHECK_INT(live_clear_state(t.confd, "web", &err), 0);
	autofree char *d = slurp(t.live);
	CHECK_STR(forms_of(d), "");
	CHECK_INT(loaded_state(&t, "web", &m4), CTR_DESIRED_RUNNING);

	/* Clearing what is not recorded writes nothing. */
	before = inode_of(t.live);
	CHECK_INT(live_clear_state(t.confd, "web", &err), 0);
	CHECK_INT(inode_of(t.live), before);
	tmp_release(&t);
}

TEST(clear_without_file_creates_nothing)
{
	struct tmp t;
	tmp_init(&t);
	struct clbsd_err err;
	clbsd_err_init(&err);
	CHECK_INT(live_clear_state(t.confd, "web", &err), 0);
	CHECK(!fs_exists(t.confd));
	tmp_release(&t);
}

TEST(keeps_other_forms)
{
	struct tmp t;
	tmp_init(&t);
	struct clbsd_err err;
	clbsd_err_init(&err);
	fs_mkdir_p(t.confd, 0755, &err);
	const char *hand = "; a hand edit\n"
			   "(container extra :image \"forge\")\n"
			   "(override \"web\" :state running)\n"
			   "(override web :state stopped)\n";
	CHECK_INT(fs_write_atomic(t.live, hand, strlen(hand), 0644, &err), 0);
	CHECK_INT(live_set_state(t.confd, "web", "stopped", &err), 0);
	autofree char *a = slurp(t.live);
	/* One override for web, where the first was; the container form is kept. */
	CHECK_STR(forms_of(a), "(container extra :image \"forge\")\n"
			       "(override web :state stopped)\n");
	autofree char *m = NULL;
	CHECK_INT(loaded_state(&t, "extra", &m), CTR_DESIRED_RUNNING);
	tmp_release(&t);
}

TEST(refuses_to_clobber_an_unreadable_file)
{
	struct tmp t;
	tmp_init(&t);
	struct clbsd_err err;
	clbsd_err_init(&err);
	fs_mkdir_p(t.confd, 0755, &err);
	const char *broken = "(override db :state stopped)\n(override web :state stopped\n";
	CHECK_INT(fs_write_atomic(t.live, broken, strlen(broken), 0644, &err), 0);

	clbsd_err_init(&err);
	CHECK_INT(live_set_state(t.confd, "db", "running", &err), -EINVAL);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	autofree char *want = xasprintf("%s:2:1: ", t.live);
	if (!strstr(err.msg, want) || !strstr(err.msg, "fix or remove the file"))
		FAILF("message: %s", err.msg);
	autofree char *a = slurp(t.live);
	CHECK_STR(a, broken);
	clbsd_err_init(&err);
	CHECK_INT(live_clear_state(t.confd, "db", &err), -EINVAL);
	autofree char *b = slurp(t.live);
	CHECK_STR(b, broken);

	/* conf_load reports the same position, so the operator sees where. */
	autofree char *m = NULL;
	CHECK_INT(loaded_state(&t, "db", &m), -1);
	CHECK(strstr(m, want));

	/* A malformed override of the container at hand is not rewritten either. */
	const char *odd = "(override web :state)\n";
	CHECK_INT(fs_write_atomic(t.live, odd, strlen(odd), 0644, &err), 0);
	clbsd_err_init(&err);
	CHECK_INT(live_set_state(t.confd, "web", "stopped", &err), -EINVAL);
	if (!strstr(err.msg, "90-live.conf:1:15: override web: malformed"))
		FAILF("message: %s", err.msg);
	autofree char *c = slurp(t.live);
	CHECK_STR(c, odd);
	tmp_release(&t);
}

TEST(bad_arguments)
{
	struct tmp t;
	tmp_init(&t);
	struct clbsd_err err;
	clbsd_err_init(&err);
	CHECK_INT(live_set_state(t.confd, "Web!", "stopped", &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid container name \"Web!\""));
	clbsd_err_init(&err);
	CHECK_INT(live_set_state(t.confd, "web", "paused", &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid state \"paused\"; expected running or stopped"));
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	clbsd_err_init(&err);
	CHECK_INT(live_set_state(t.confd, "web", NULL, &err), -EINVAL);
	CHECK(!fs_exists(t.confd));
	tmp_release(&t);
}

TEST_MAIN_BEGIN("conf.live")
RUN(override_applies);
RUN(override_later_wins);
RUN(override_errors);
RUN(override_amends_any_key);
RUN(override_of_invalid_container_does_not_cascade);
RUN(stale_live_record_ignored);
RUN(set_change_clear);
RUN(clear_without_file_creates_nothing);
RUN(keeps_other_forms);
RUN(refuses_to_clobber_an_unreadable_file);
RUN(bad_arguments);
TEST_MAIN_END
