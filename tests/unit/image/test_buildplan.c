#include "image/cblockfile.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct clbsd_err err;
static char ctxdir[64];

static int image_id(const char *ref, char id[65], void *ctx, struct clbsd_err *e)
{
	if (strcmp(ref, "missing") == 0)
		return clbsd_err_setmsg(e, CLBSD_E_NOTFOUND, ENOENT, "no image %s", ref);
	/* A stand-in id: 64 hex characters derived from the name. */
	memset(id, 'a', 64);
	id[0] = ref[0];
	id[64] = '\0';
	return 0;
}

static const struct cbf_plan_ops ops = {image_id, cbf_source_hash_context, ctxdir};

/* Read, expand with args, plan: the keys as a NULL-terminated vector. */
static char **keys(const char *text, char **args)
{
	struct cbf_file *f = NULL;
	if (cbf_read("Cblockfile", text, strlen(text), &f, &err) < 0) {
		printf("# read: %s\n", err.msg);
		return NULL;
	}
	struct cbf_expand_opts o = {.build_args = args};
	struct cbf_plan p;
	if (cbf_expand(f, &o, &err) < 0 || cbf_plan_build(f, &ops, &p, &err) < 0) {
		printf("# plan: %s\n", err.msg);
		cbf_file_free(f);
		return NULL;
	}
	struct strv v = STRV_INIT;
	for (size_t i = 0; i < p.n; i++)
		strv_push(&v, p.steps[i].key);
	cbf_plan_release(&p);
	cbf_file_free(f);
	return v.v;
}

static void write_file(const char *rel, const char *content, mode_t mode)
{
	char *p = xasprintf("%s/%s", ctxdir, rel);
	char *dir = xstrdup(p);
	*strrchr(dir, '/') = '\0';
	fs_mkdir_p(dir, 0755, &err);
	fs_write_atomic(p, content, strlen(content), mode, &err);
	chmod(p, mode);
	free(dir);
	free(p);
}

/* How many leading keys agree. */
static size_t same_prefix(char **a, char **b)
{
	size_t i = 0;
	while (a[i] && b[i] && strcmp(a[i], b[i]) == 0)
		i++;
	return i;
}

static const char *base_file = "FROM debian\n"
			       "ENV A=1\n"
			       "COPY app/ /app/\n"
			       "RUN make\n"
			       "COPY conf.txt /etc/app.conf\n"
			       "CMD [\"/app/run\"]\n";

TEST(same_input_same_keys)
{
	char **a = keys(base_file, NULL);
	char **b = keys(base_file, NULL);
	CHECK(a && b);
	CHECK_INT(strv_len(a), 5);
	CHECK_INT(same_prefix(a, b), 5);
	for (size_t i = 0; a[i]; i++) {
		CHECK_INT(strlen(a[i]), 64);
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(a[i], a[k]) != 0);
	}
	/* Comments, case, spacing and continuations are not part of a key. */
	char **c = keys("# a comment\nfrom debian\nenv A=1\n"
			"COPY   [\"app/\", \"/app/\"]\nRUN \\\nmake\n"
			"copy conf.txt /etc/app.conf\ncmd [ \"/app/run\" ]\n",
			NULL);
	CHECK(c);
	CHECK_INT(same_prefix(a, c), 5);
	strv_free(a);
	strv_free(b);
	strv_free(c);
}

TEST(changing_step_k_changes_k_and_after)
{
	char **a = keys(base_file, NULL);
	char **b = keys("FROM debian\n"
			"ENV A=1\n"
			"COPY app/ /app/\n"
			"RUN make -j2\n"
			"COPY conf.txt /etc/app.conf\n"
			"CMD [\"/app/run\"]\n",
			NULL);
	CHECK(a && b);
	CHECK_INT(same_prefix(a, b), 2);
	for (size_t i = 2; i < 5; i++)
		CHECK(strcmp(a[i], b[i]) != 0);
	/* Changing the base image changes every key. */
	char **c = keys("FROM alpine\n"
			"ENV A=1\n"
			"COPY app/ /app/\n"
			"RUN make\n"
			"COPY conf.txt /etc/app.conf\n"
			"CMD [\"/app/run\"]\n",
			NULL);
	CHECK(c);
	CHECK_INT(same_prefix(a, c), 0);
	strv_free(a);
	strv_free(b);
	strv_free(c);
}

TEST(source_content_changes_its_step)
{
	char **a = keys(base_file, NULL);
	write_file("conf.txt", "listen 8081\n", 0644);
	char **b = keys(base_file, NULL);
	CHECK(a && b);
	CHECK_INT(same_prefix(a, b), 3);
	CHECK(strcmp(a[3], b[3]) != 0);
	/* A file in app/ changes the first COPY and everything after. */
	write_file("app/main.c", "int main(void) { return 1; }\n", 0644);
	char **c = keys(base_file, NULL);
	CHECK(c);
	CHECK_INT(same_prefix(b, c), 1);
	/* A mode change counts; a time change does not. */
	write_file("app/main.c", "int main(void) { return 1; }\n", 0755);
	char **d = keys(base_file, NULL);
	CHECK(d);
	CHECK_INT(same_prefix(c, d), 1);
	char *p = xasprintf("%s/app/main.c", ctxdir);
	CHECK_INT(utimensat(AT_FDCWD, p, NULL, 0), 0);
	free(p);
	char **e = keys(base_file, NULL);
	CHECK(e);
	CHECK_INT(same_prefix(d, e), 5);
	/* A new file in app/ counts. */
	write_file("app/extra.h", "\n", 0644);
	char **g = keys(base_file, NULL);
	CHECK(g);
	CHECK_INT(same_prefix(e, g), 1);
	strv_free(a);
	strv_free(b);
	strv_free(c);
	strv_free(d);
	strv_free(e);
	strv_free(g);
}

TEST(cblockignore)
{
	const char *text = "FROM debian\nCOPY . /src/\nRUN make\n";
	char **a = keys(text, NULL);
	/* An ignored file changing is not a change. */
	write_file(".cblockignore", "# build output\n*.o\n/build/\n!build/keep.txt\n", 0644);
	char **b = keys(text, NULL);
	write_file("main.o", "object\n", 0644);
	write_file("build/out.bin", "bin\n", 0644);
	char **c = keys(text, NULL);
	CHECK(a && b && c);
	CHECK_INT(same_prefix(b, c), 2);
	/* .cblockignore itself does not count, but a re-included file does. */
	CHECK_INT(same_prefix(a, b), 2);
	write_file("build/keep.txt", "keep\n", 0644);
	char **d = keys(text, NULL);
	CHECK(d);
	CHECK_INT(same_prefix(c, d), 0);
	char **pats = cbf_ignore_parse("# c\n\n  ./a/  \n!a/b\n/c*\n");
	CHECK_INT(strv_len(pats), 3);
	CHECK_STR(pats[0], "a");
	CHECK(cbf_ignored(pats, "a"));
	CHECK(cbf_ignored(pats, "a/x/y"));
	CHECK(!cbf_ignored(pats, "a/b"));
	CHECK(cbf_ignored(pats, "cat"));
	CHECK(!cbf_ignored(pats, "x/cat"));
	CHECK(cbf_ignored(pats, ".cblockignore"));
	strv_free(pats);
	strv_free(a);
	strv_free(b);
	strv_free(c);
	strv_free(d);
	char *p = xasprintf("%s/.cblockignore", ctxdir);
	unlink(p);
	free(p);
}

TEST(arg_changes_only_from_use)
{
	const char *text = "FROM debian\n"
			   "COPY conf.txt /etc/\n"
			   "ARG V=1\n"
			   "COPY app/ /app/\n"
			   "ENV VERSION=$V\n"
			   "COPY conf.txt /etc/b/\n";
	char *a1[] = {"V=1", NULL};
	char *a2[] = {"V=2", NULL};
	char **a = keys(text, a1);
	char **b = keys(text, a2);
	CHECK(a && b);
	/* COPY, ARG and the COPY after the ARG do not use V: same keys. */
	CHECK_INT(same_prefix(a, b), 3);
	CHECK(strcmp(a[3], b[3]) != 0);
	CHECK(strcmp(a[4], b[4]) != 0);
	/* The default and an equal build argument are the same build. */
	char **c = keys(text, NULL);
	CHECK(c);
	CHECK_INT(same_prefix(a, c), 5);
	/* RUN has every ARG in scope in its environment, so it is a use. */
	const char *run = "FROM debian\nARG V=1\nENV X=1\nRUN make\n";
	char **d = keys(run, a1);
	char **e = keys(run, a2);
	CHECK(d && e);
	CHECK_INT(same_prefix(d, e), 2);
	/* A build argument nobody declares changes nothing. */
	char *other[] = {"UNUSED=1", NULL};
	char **g = keys(run, other);
	CHECK(g);
	CHECK_INT(same_prefix(d, g), 3);
	strv_free(a);
	strv_free(b);
	strv_free(c);
	strv_free(d);
	strv_free(e);
	strv_free(g);
}

TEST(multi_stage)
{
	const char *text = "FROM debian AS build\n"
			   "COPY app/ /src/\n"
			   "RUN make\n"
			   "FROM scratch\n"
			   "COPY --from=build /out/app /app\n"
			   "FROM build AS test\n"
			   "RUN make check\n";
	struct cbf_file *f = NULL;
	CHECK_INT(cbf_read("Cblockfile", text, strlen(text), &f, &err), 0);
	CHECK_INT(cbf_expand(f, NULL, &err), 0);
	struct cbf_plan p;
	CHECK_INT(cbf_plan_build(f, &ops, &p, &err), 0);
	CHECK_INT(p.n, 4);
	CHECK_INT(p.nstages, 3);
	CHECK_INT(p.steps[2].stage, 1);
	CHECK_INT(p.steps[2].index, 0);
	CHECK_STR(p.stage_key[0], p.steps[1].key);
	/* A FROM stage starts where that stage ended. */
	CHECK_STR(p.stage_base[2], p.stage_key[0]);
	CHECK(p.steps[2].instr == &f->stages[1].instrs[0]);
	CHECK(cbf_kind_changes_files(p.steps[2].instr->kind));
	char *c = cbf_instr_canon(p.steps[2].instr);
	CHECK_STR(p.steps[2].canon, c);
	free(c);
	char first_copy[65];
	memcpy(first_copy, p.steps[2].key, 65);
	cbf_plan_release(&p);
	/* Changing the build stage changes the COPY --from in the next. */
	write_file("app/new.c", "\n", 0644);
	CHECK_INT(cbf_plan_build(f, &ops, &p, &err), 0);
	CHECK(strcmp(first_copy, p.steps[2].key) != 0);
	cbf_plan_release(&p);
	cbf_file_free(f);
	CHECK(!cbf_kind_changes_files(CBF_ENV));
}

TEST(stages_needed)
{
	const char *text = "FROM debian AS base\n"
			   "FROM base AS build\n"
			   "FROM debian AS lint\n"
			   "FROM debian AS assets\n"
			   "FROM scratch AS unused\n"
			   "FROM build\n"
			   "COPY --from=assets /a /a\n";
	struct cbf_file *f = NULL;
	CHECK_INT(cbf_read("Cblockfile", text, strlen(text), &f, &err), 0);
	bool needed[6];
	cbf_stages_needed(f, needed);
	CHECK(needed[0] && needed[1] && !needed[2] && needed[3] && !needed[4] && needed[5]);
	cbf_file_free(f);
}

TEST(plan_errors)
{
	struct cbf_file *f = NULL;
	const char *t1 = "FROM missing\nRUN x\n";
	CHECK_INT(cbf_read("Cblockfile", t1, strlen(t1), &f, &err), 0);
	struct cbf_plan p;
	CHECK(cbf_plan_build(f, &ops, &p, &err) < 0);
	CHECK_STR(err.msg, "Cblockfile:1:1: FROM missing: no image missing");
	cbf_file_free(f);
	const char *t2 = "FROM debian\nRUN x\nCOPY nothere /x\n";
	CHECK_INT(cbf_read("Cblockfile", t2, strlen(t2), &f, &err), 0);
	CHECK(cbf_plan_build(f, &ops, &p, &err) < 0);
	CHECK(strncmp(err.msg, "Cblockfile:3:1: COPY: build context: nothere", 44) == 0);
	cbf_file_free(f);
	const char *t3 = "FROM debian\nCOPY ../etc/passwd /x\n";
	CHECK_INT(cbf_read("Cblockfile", t3, strlen(t3), &f, &err), 0);
	CHECK(cbf_plan_build(f, &ops, &p, &err) < 0);
	CHECK(strstr(err.msg, "leaves the build context") != NULL);
	cbf_file_free(f);
	/* A symlink cannot lead a source out of the context. */
	char *l = xasprintf("%s/etc-link", ctxdir);
	CHECK_INT(symlink("/etc", l), 0);
	free(l);
	const char *t4 = "FROM debian\nCOPY etc-link/passwd /x\n";
	CHECK_INT(cbf_read("Cblockfile", t4, strlen(t4), &f, &err), 0);
	CHECK(cbf_plan_build(f, &ops, &p, &err) < 0);
	CHECK(strstr(err.msg, "not a directory") != NULL);
	cbf_file_free(f);
	const char *t5 = "FROM debian\nCOPY *.nomatch /x/\n";
	CHECK_INT(cbf_read("Cblockfile", t5, strlen(t5), &f, &err), 0);
	CHECK(cbf_plan_build(f, &ops, &p, &err) < 0);
	CHECK(strstr(err.msg, "matches nothing") != NULL);
	cbf_file_free(f);
}

TEST(globs_and_urls)
{
	write_file("g/a.txt", "a\n", 0644);
	write_file("g/b.txt", "b\n", 0644);
	write_file("g/c.md", "c\n", 0644);
	char *src[] = {"g/*.txt", NULL};
	char h1[65], h2[65], h3[65];
	CHECK_INT(cbf_hash_sources(ctxdir, src, h1, &err), 0);
	write_file("g/c.md", "changed\n", 0644);
	CHECK_INT(cbf_hash_sources(ctxdir, src, h2, &err), 0);
	CHECK_STR(h1, h2);
	write_file("g/b.txt", "changed\n", 0644);
	CHECK_INT(cbf_hash_sources(ctxdir, src, h3, &err), 0);
	CHECK(strcmp(h1, h3) != 0);
	char *url[] = {"https://example.org/x.tar.gz", NULL};
	char *url2[] = {"https://example.org/y.tar.gz", NULL};
	CHECK_INT(cbf_hash_sources(ctxdir, url, h1, &err), 0);
	CHECK_INT(cbf_hash_sources(ctxdir, url2, h2, &err), 0);
	CHECK(strcmp(h1, h2) != 0);
}

TEST_MAIN_BEGIN("buildplan")
snprintf(ctxdir, sizeof(ctxdir), "/tmp/clbsd-buildplan-%d", (int)getpid());
fs_mkdir_p(ctxdir, 0755, &err);
write_file("app/main.c", "int main(void) { return 0; }\n", 0644);
write_file("conf.txt", "listen 8080\n", 0644);
RUN(same_input_same_keys);
RUN(changing_step_k_changes_k_and_after);
RUN(source_content_changes_its_step);
RUN(cblockignore);
RUN(arg_changes_only_from_use);
RUN(multi_stage);
RUN(stages_needed);
RUN(plan_errors);
RUN(globs_and_urls);
fs_rm_rf(ctxdir, &err);
TEST_MAIN_END
