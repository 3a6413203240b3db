#include "image/cblockfile.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static struct clbsd_err err;
static char top[64];
static char *ctx, *root, *stage, *host;

static void put(const char *dir, const char *rel, const char *content, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, rel);
	char *d = xstrdup(p);
	*strrchr(d, '/') = '\0';
	fs_mkdir_p(d, 0755, &err);
	fs_write_atomic(p, content, strlen(content), mode, &err);
	chmod(p, mode);
	free(d);
	free(p);
}

static char *get(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	char *text = NULL;
	if (fs_read_file(p, &text, NULL, &err) < 0)
		text = NULL;
	free(p);
	return text;
}

static bool exists(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static mode_t mode_of(const char *dir, const char *rel, uid_t *uid)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st = {0};
	lstat(p, &st);
	free(p);
	if (uid)
		*uid = st.st_uid;
	return st.st_mode & 07777;
}

/* Read a one-stage file whose instructions follow "FROM a AS s\nFROM b\n". */
static struct cbf_file *rd(const char *body)
{
	char *text = xasprintf("FROM a AS s\nFROM b\n%s", body);
	struct cbf_file *f = NULL;
	if (cbf_read("Cblockfile", text, strlen(text), &f, &err) < 0 ||
	    cbf_expand(f, NULL, &err) < 0) {
		printf("# %s\n", err.msg);
		cbf_file_free(f);
		f = NULL;
	}
	free(text);
	return f;
}

/* Apply every instruction of the second stage; the WORKDIR carries over. */
static int apply(const char *body)
{
	struct cbf_file *f = rd(body);
	if (!f)
		return -EINVAL;
	char *wd = xstrdup("/");
	int r = 0;
	for (size_t i = 0; i < f->stages[1].n && r == 0; i++) {
		const struct cbf_instr *in = &f->stages[1].instrs[i];
		struct cbf_step_env env = {ctx, stage, wd};
		r = cbf_apply_file_step(in, root, &env, &err);
		if (r == 0 && in->kind == CBF_WORKDIR) {
			char *n = in->value[0] == '/' ? xstrdup(in->value)
						      : xasprintf("%s/%s", wd, in->value);
			free(wd);
			wd = n;
		}
	}
	free(wd);
	cbf_file_free(f);
	return r;
}

TEST(copy_files_and_dirs)
{
	put(ctx, "app/main.c", "int main;\n", 0640);
	put(ctx, "app/lib/util.h", "#pragma once\n", 0644);
	put(ctx, "conf.txt", "listen 80\n", 0600);
	CHECK_INT(apply("COPY conf.txt /etc/app/\n"
			"COPY conf.txt /etc/app.conf\n"
			"COPY app /srv/app\n"
			"COPY app/ /srv/app2/\n"),
		  0);
	char *t = get(root, "etc/app/conf.txt");
	CHECK_STR(t, "listen 80\n");
	free(t);
	CHECK(exists(root, "etc/app.conf"));
	CHECK_INT(mode_of(root, "etc/app.conf", NULL), 0600);
	/* A directory source copies its contents. */
	CHECK(exists(root, "srv/app/main.c"));
	CHECK(exists(root, "srv/app/lib/util.h"));
	CHECK(!exists(root, "srv/app/app"));
	CHECK(exists(root, "srv/app2/lib/util.h"));
	CHECK_INT(mode_of(root, "srv/app/main.c", NULL), 0640);
	/* An existing directory receives a file without a trailing slash. */
	CHECK_INT(apply("COPY conf.txt /srv/app\n"), 0);
	CHECK(exists(root, "srv/app/conf.txt"));
}

TEST(chown_chmod)
{
	put(root, "etc/passwd", "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
	    0644);
	put(root, "etc/group", "root:x:0:\nwww:x:33:\nstaff:x:50:\n", 0644);
	uid_t uid;
	CHECK_INT(apply("COPY --chown=www:staff --chmod=0755 conf.txt /o/a\n"
			"COPY --chown=1000 conf.txt /o/b\n"
			"COPY conf.txt /o/c\n"),
		  0);
	CHECK_INT(mode_of(root, "o/a", &uid), 0755);
	CHECK_INT(uid, 33);
	char *p = xasprintf("%s/o/a", root);
	struct stat st;
	CHECK_INT(stat(p, &st), 0);
	CHECK_INT(st.st_gid, 50);
	free(p);
	mode_of(root, "o/b", &uid);
	CHECK_INT(uid, 1000);
	mode_of(root, "o/c", &uid);
	CHECK_INT(uid, 0);
	CHECK(apply("COPY --chown=nobody conf.txt /o/d\n") < 0);
	CHECK(strstr(err.msg, "not in the image's /etc/passwd") != NULL);
}

TEST(symlinks_stay_inside)
{
	/* The image's /etc/ssl points at the host's directory by an absolute
	   path, and /up climbs with ..: both resolve inside the tree. */
	char *hostssl = xasprintf("%s/ssl", host);
	fs_mkdir_p(hostssl, 0755, &err);
	char *l = xasprintf("%s/etc/ssl", root);
	fs_mkdir_p(root, 0755, &err);
	char *etc = xasprintf("%s/etc", root);
	fs_mkdir_p(etc, 0755, &err);
	CHECK_INT(symlink(hostssl, l), 0);
	char *up = xasprintf("%s/up", root);
	CHECK_INT(symlink("../../../../../../..", up), 0);
	CHECK_INT(apply("COPY conf.txt /etc/ssl/cert.pem\n"
			"COPY conf.txt /up/top.txt\n"
			"WORKDIR /etc/ssl/sub\n"),
		  0);
	CHECK(!exists(hostssl, "cert.pem"));
	CHECK(!exists(hostssl, "sub"));
	char *inside = xasprintf("%s%s/cert.pem", root, hostssl);
	CHECK(fs_exists(inside));
	CHECK(exists(root, "top.txt"));
	free(inside);
	free(hostssl);
	free(l);
	free(etc);
	free(up);
}

TEST(copy_from_stage)
{
	put(stage, "out/app", "binary\n", 0755);
	/* The stage's /etc is a link to the host's /etc: reading stays in the stage. */
	char *l = xasprintf("%s/etc", stage);
	CHECK_INT(symlink("/etc", l), 0);
	free(l);
	put(stage, "lib/x", "x\n", 0644);
	char *o = xasprintf("%s/out/app", stage);
	CHECK_INT(chown(o, 7, 8), 0);
	free(o);
	CHECK_INT(apply("COPY --from=s /out/app /usr/local/bin/\n"
			"COPY --from=s --chown=9:9 /out/app /usr/local/bin/app9\n"),
		  0);
	uid_t uid;
	CHECK_INT(mode_of(root, "usr/local/bin/app", &uid), 0755);
	CHECK_INT(uid, 7); /* --from keeps the owner, as in Docker */
	mode_of(root, "usr/local/bin/app9", &uid);
	CHECK_INT(uid, 9);
	CHECK(apply("COPY --from=s /etc/passwd /stolen\n") < 0);
	CHECK(!exists(root, "stolen"));
	/* A symlink is copied as a symlink, not followed. */
	char *l2 = xasprintf("%s/lib/passwd", stage);
	CHECK_INT(symlink("/etc/passwd", l2), 0);
	free(l2);
	CHECK_INT(apply("COPY --from=s /lib/ /l/\n"), 0);
	char target[64] = "";
	char *p = xasprintf("%s/l/passwd", root);
	CHECK(readlink(p, target, sizeof(target) - 1) > 0);
	CHECK_STR(target, "/etc/passwd");
	free(p);
}

TEST(context_cannot_be_left)
{
	CHECK(apply("COPY ../../etc/hostname /h\n") < 0);
	CHECK(!exists(root, "h"));
	/* .. at the context's root stays there: it names the context. */
	put(ctx, "only-here.txt", "ctx\n", 0644);
	CHECK_INT(apply("COPY ../../only-here.txt /h2\n"), 0);
	char *t = get(root, "h2");
	CHECK_STR(t, "ctx\n");
	free(t);
}

TEST(cblockignore_applies)
{
	put(ctx, "big/data.bin", "zzz\n", 0644);
	put(ctx, ".cblockignore", "big\n*.o\n", 0644);
	put(ctx, "x.o", "obj\n", 0644);
	CHECK_INT(apply("COPY . /all/\n"), 0);
	CHECK(exists(root, "all/conf.txt"));
	CHECK(!exists(root, "all/big"));
	CHECK(!exists(root, "all/x.o"));
	CHECK(!exists(root, "all/.cblockignore"));
	char *p = xasprintf("%s/.cblockignore", ctx);
	unlink(p);
	free(p);
}

TEST(workdir_and_add)
{
	CHECK_INT(apply("WORKDIR /srv\nWORKDIR www/html\nCOPY conf.txt rel.conf\n"), 0);
	CHECK(exists(root, "srv/www/html/rel.conf"));
	put(ctx, "site.tar.gz", "not really\n", 0644);
	CHECK(apply("ADD site.tar.gz /srv/\n") < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK_INT(apply("ADD conf.txt /added\n"), 0);
	CHECK(exists(root, "added"));
	put(ctx, "g/a.txt", "a\n", 0644);
	put(ctx, "g/b.txt", "b\n", 0644);
	put(ctx, "g/c.md", "c\n", 0644);
	CHECK_INT(apply("COPY g/*.txt /glob/\n"), 0);
	CHECK(exists(root, "glob/a.txt"));
	CHECK(exists(root, "glob/b.txt"));
	CHECK(!exists(root, "glob/c.md"));
	CHECK(apply("COPY g/*.txt /oneglob\n") < 0);
	CHECK(strstr(err.msg, "must end in /") != NULL);
}

TEST(rootpivot)
{
	put(root, "new/root/bin/sh", "#!sh\n", 0755);
	put(root, "new/root/etc/rc", "rc\n", 0644);
	CHECK_INT(apply("ROOTPIVOT /new/root\n"), 0);
	CHECK(exists(root, "bin/sh"));
	CHECK(exists(root, "etc/rc"));
	CHECK(!exists(root, "new"));
	CHECK(!exists(root, "srv"));
	CHECK_INT(mode_of(root, "bin/sh", NULL), 0755);
	CHECK(apply("ROOTPIVOT /nope\n") < 0);
	CHECK(strstr(err.msg, "not a directory") != NULL);
}

TEST_MAIN_BEGIN("buildstep")
snprintf(top, sizeof(top), "/tmp/clbsd-buildstep-%d", (int)getpid());
ctx = xasprintf("%s/ctx", top);
root = xasprintf("%s/root", top);
stage = xasprintf("%s/stage", top);
host = xasprintf("%s/host", top);
fs_mkdir_p(ctx, 0755, &err);
fs_mkdir_p(root, 0755, &err);
fs_mkdir_p(stage, 0755, &err);
fs_mkdir_p(host, 0755, &err);
if (geteuid() != 0) {
	printf("skip buildstep: needs root (chown)\n");
	fs_rm_rf(top, &err);
	return 0;
}
RUN(copy_files_and_dirs);
RUN(chown_chmod);
RUN(symlinks_stay_inside);
RUN(copy_from_stage);
RUN(context_cannot_be_left);
RUN(cblockignore_applies);
RUN(workdir_and_add);
RUN(rootpivot);
fs_rm_rf(top, &err);
free(ctx);
free(root);
free(stage);
free(host);
TEST_MAIN_END
