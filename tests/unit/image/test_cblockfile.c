#include "image/cblockfile.h"
#include "test.h"
#include "util/util.h"

static struct clbsd_err err;

static struct cbf_file *rd(const char *text)
{
	struct cbf_file *f = NULL;
	if (cbf_read("Cblockfile", text, strlen(text), &f, &err) < 0)
		(void)0; /* the caller checks */
	return f;
}

/* Reading fails, and the message starts with the expected "file:line:col: ". */
static bool rd_fails(const char *text, const char *prefix, const char *needle)
{
	struct cbf_file *f = NULL;
	if (cbf_read("Cblockfile", text, strlen(text), &f, &err) == 0) {
		cbf_file_free(f);
		printf("# read, expected an error\n");
		return false;
	}
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, needle)) {
		printf("# got \"%s\", expected \"%s...%s\"\n", err.msg, prefix, needle);
		return false;
	}
	return true;
}

static const struct cbf_instr *ins(const struct cbf_file *f, size_t stage, size_t i)
{
	return &f->stages[stage].instrs[i];
}

TEST(from_forms)
{
	struct cbf_file *f = rd("FROM debian:12 AS Build\n"
				"RUN true\n"
				"FROM build\n"
				"FROM scratch\n"
				"from alpine\n");
	CHECK(f);
	CHECK_INT(f->nstages, 4);
	CHECK_STR(f->stages[0].base, "debian:12");
	CHECK_INT(f->stages[0].base_kind, CBF_BASE_IMAGE);
	CHECK_STR(f->stages[0].name, "build");
	CHECK_INT(f->stages[0].line, 1);
	CHECK_INT(f->stages[1].base_kind, CBF_BASE_STAGE);
	CHECK_INT(f->stages[1].base_stage, 0);
	CHECK(f->stages[1].name == NULL);
	CHECK_INT(f->stages[2].base_kind, CBF_BASE_SCRATCH);
	CHECK_STR(f->stages[3].base, "alpine");
	CHECK_INT(cbf_stage_find(f, "BUILD"), 0);
	CHECK_INT(cbf_stage_find(f, "2"), 2);
	CHECK_INT(cbf_stage_find(f, "9"), -1);
	cbf_file_free(f);
}

TEST(run_shell_and_exec)
{
	struct cbf_file *f =
		rd("FROM a\n"
		   "RUN apt-get update && apt-get install -y nginx\n"
		   "RUN [\"/bin/echo\", \"a \\\"b\\\"\", \"\\u00e9\\n\", \"\\ud83d\\ude00\"]\n"
		   "RUN []\n"
		   "RUN \"pkg install git-lite\"\n");
	CHECK(f);
	const struct cbf_instr *r = ins(f, 0, 0);
	CHECK_INT(r->kind, CBF_RUN);
	CHECK(!r->exec_form);
	CHECK_STR(r->shell, "apt-get update && apt-get install -y nginx");
	r = ins(f, 0, 1);
	CHECK(r->exec_form);
	CHECK_INT(strv_len(r->argv), 4);
	CHECK_STR(r->argv[0], "/bin/echo");
	CHECK_STR(r->argv[1], "a \"b\"");
	CHECK_STR(r->argv[2], "\xc3\xa9\n");
	CHECK_STR(r->argv[3], "\xf0\x9f\x98\x80");
	CHECK(ins(f, 0, 2)->exec_form && ins(f, 0, 2)->argv[0] == NULL);
	/* cblocks quotes the whole command. */
	CHECK_STR(ins(f, 0, 3)->shell, "pkg install git-lite");
	cbf_file_free(f);
}

TEST(cmd_entrypoint_shell)
{
	struct cbf_file *f = rd("FROM a\n"
				"CMD [\"-c\", \"/h2o.conf\"]\n"
				"ENTRYPOINT [ \"/usr/local/bin/h2o\" ]\n"
				"CMD nginx -g 'daemon off;'\n"
				"ENTRYPOINT exec httpd\n"
				"SHELL [\"/bin/bash\", \"-euc\"]\n");
	CHECK(f);
	CHECK(ins(f, 0, 0)->exec_form);
	CHECK_STR(ins(f, 0, 0)->argv[1], "/h2o.conf");
	CHECK_INT(ins(f, 0, 1)->kind, CBF_ENTRYPOINT);
	CHECK_STR(ins(f, 0, 1)->argv[0], "/usr/local/bin/h2o");
	CHECK_STR(ins(f, 0, 2)->shell, "nginx -g 'daemon off;'");
	CHECK_STR(ins(f, 0, 3)->shell, "exec httpd");
	CHECK_INT(ins(f, 0, 4)->kind, CBF_SHELL);
	CHECK_STR(ins(f, 0, 4)->argv[1], "-euc");
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nSHELL /bin/sh -c\n", "Cblockfile:2:7: ", "JSON array"));
	CHECK(rd_fails("FROM a\nSHELL []\n", "Cblockfile:2:7: ", "at least the shell"));
}

TEST(copy_add_forms)
{
	struct cbf_file *f =
		rd("FROM a AS build\n"
		   "FROM b\n"
		   "COPY src/ /app/\n"
		   "COPY --from=build --chown=www:www --chmod=0755 /out/bin /usr/bin/app\n"
		   "COPY --FROM build /fcgi/fcgi /usr/local/bin\n"
		   "COPY --from=0 a b /dst/\n"
		   "COPY [\"with space\", \"/x y/\"]\n"
		   "ADD site.tar.gz /srv\n"
		   "ADD https://example.org/f.txt /f.txt\n"
		   "ADD --chown=1 \"a b\" 'c d'\n");
	CHECK(f);
	const struct cbf_instr *c = ins(f, 1, 0);
	CHECK_INT(c->kind, CBF_COPY);
	CHECK_INT(c->from_stage, -1);
	CHECK_STR(c->argv[0], "src/");
	CHECK_STR(c->argv[1], "/app/");
	c = ins(f, 1, 1);
	CHECK_STR(c->from, "build");
	CHECK_INT(c->from_stage, 0);
	CHECK_STR(c->chown, "www:www");
	CHECK_STR(c->chmod, "0755");
	CHECK_STR(c->argv[1], "/usr/bin/app");
	CHECK_INT(ins(f, 1, 2)->from_stage, 0);
	CHECK_STR(ins(f, 1, 2)->argv[0], "/fcgi/fcgi");
	CHECK_INT(ins(f, 1, 3)->from_stage, 0);
	CHECK_INT(strv_len(ins(f, 1, 3)->argv), 3);
	CHECK_STR(ins(f, 1, 4)->argv[0], "with space");
	CHECK_INT(ins(f, 1, 5)->kind, CBF_ADD);
	CHECK_STR(ins(f, 1, 7)->argv[0], "a b");
	CHECK_STR(ins(f, 1, 7)->argv[1], "c d");
	CHECK_STR(ins(f, 1, 7)->chown, "1");
	cbf_file_free(f);
	CHECK_INT(cbf_add_source_kind("site.tar.gz"), CBF_ADD_ARCHIVE);
	CHECK_INT(cbf_add_source_kind("x.TXZ"), CBF_ADD_ARCHIVE);
	CHECK_INT(cbf_add_source_kind("conf/h2o.conf"), CBF_ADD_FILE);
	CHECK_INT(cbf_add_source_kind("https://e.org/a"), CBF_ADD_URL);
	CHECK_INT(cbf_add_source_kind("http://e.org/a.tgz"), CBF_ADD_ARCHIVE_URL);
}

TEST(copy_errors)
{
	CHECK(rd_fails("FROM a\nCOPY --from=nope x /y\n", "Cblockfile:2:6: ", "no earlier stage"));
	/* A stage cannot copy from itself or a later one. */
	CHECK(rd_fails("FROM a AS one\nCOPY --from=one x /y\n",
		       "Cblockfile:2:6: ", "no earlier stage"));
	CHECK(rd_fails("FROM a\nFROM b\nCOPY --from=1 x /y\n",
		       "Cblockfile:3:6: ", "no earlier stage"));
	CHECK(rd_fails("FROM a\nCOPY onlyone\n", "Cblockfile:2:6: ", "source and a destination"));
	CHECK(rd_fails("FROM a\nCOPY a b /notdir\n", "Cblockfile:2:6: ", "ending in '/'"));
	CHECK(rd_fails("FROM a\nCOPY --chmod=999 a /b\n", "Cblockfile:2:6: ", "octal"));
	CHECK(rd_fails("FROM a\nCOPY --chown=a:b:c a /b\n", "Cblockfile:2:6: ", "USER[:GROUP]"));
	CHECK(rd_fails("FROM a\nADD --from=0 a /b\n", "Cblockfile:2:5: ", "does not take"));
	CHECK(rd_fails("FROM a\nCOPY --link a /b\n",
		       "Cblockfile:2:6: ", "does not take the flag --link"));
	CHECK(rd_fails("FROM a\nCOPY --chown a /b\n", "Cblockfile:2:6: ", "needs a value"));
}

TEST(env_forms)
{
	struct cbf_file *f = rd("FROM a\n"
				"ENV A=1 B=\"two words\" C='$A' D=x\\ y\n"
				"ENV LEGACY value with spaces\n"
				"ENV ASSUME_ALWAYS_YES = \"YES\"\n"
				"ENV \"QUOTED\" = \"v\"\n"
				"ENV EMPTY=\n");
	CHECK(f);
	const struct cbf_instr *e = ins(f, 0, 0);
	CHECK_INT(e->nkv, 4);
	CHECK_STR(e->kv[0].key, "A");
	CHECK_STR(e->kv[0].value, "1");
	CHECK_STR(e->kv[1].value, "two words");
	CHECK_STR(e->kv[2].value, "$A");
	CHECK_STR(e->kv[3].value, "x y");
	CHECK_STR(ins(f, 0, 1)->kv[0].key, "LEGACY");
	CHECK_STR(ins(f, 0, 1)->kv[0].value, "value with spaces");
	CHECK_STR(ins(f, 0, 2)->kv[0].key, "ASSUME_ALWAYS_YES");
	CHECK_STR(ins(f, 0, 2)->kv[0].value, "YES");
	CHECK_STR(ins(f, 0, 3)->kv[0].key, "QUOTED");
	CHECK_STR(ins(f, 0, 4)->kv[0].value, "");
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nENV A=1 B\n", "Cblockfile:2:9: ", "NAME=value"));
	CHECK(rd_fails("FROM a\nENV =x\n", "Cblockfile:2:5: ", "must not be empty"));
}

TEST(label_arg)
{
	struct cbf_file *f = rd("ARG BASE=debian\n"
				"ARG TAG\n"
				"FROM $BASE:${TAG:-12}\n"
				"ARG V=1 W\n"
				"LABEL org.opencontainers.image.title=\"web\" \"k 2\"=v\n");
	CHECK(f);
	CHECK_INT(f->nargs, 2);
	CHECK_STR(f->args[0].kv[0].key, "BASE");
	CHECK_STR(f->args[0].kv[0].value, "debian");
	CHECK(f->args[1].kv[0].value == NULL);
	/* Before substitution FROM holds the text as written. */
	CHECK_STR(f->stages[0].base, "$BASE:${TAG:-12}");
	const struct cbf_instr *a = ins(f, 0, 0);
	CHECK_INT(a->kind, CBF_ARG);
	CHECK_INT(a->nkv, 2);
	CHECK_STR(a->kv[0].value, "1");
	CHECK(a->kv[1].value == NULL);
	const struct cbf_instr *l = ins(f, 0, 1);
	CHECK_STR(l->kv[0].key, "org.opencontainers.image.title");
	CHECK_STR(l->kv[0].value, "web");
	CHECK_STR(l->kv[1].key, "k 2");
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nARG 9x\n", "Cblockfile:2:5: ", "not a name"));
}

TEST(workdir_user_expose_volume)
{
	struct cbf_file *f = rd("FROM a\n"
				"WORKDIR \"/usr/src\"\n"
				"USER www:www\n"
				"USER 1000\n"
				"EXPOSE 80 53/UDP 8000-8010/tcp\n"
				"VOLUME /data /logs\n"
				"VOLUME [\"/srv/data\"]\n");
	CHECK(f);
	CHECK_STR(ins(f, 0, 0)->value, "/usr/src");
	CHECK_STR(ins(f, 0, 1)->value, "www:www");
	CHECK_STR(ins(f, 0, 2)->value, "1000");
	const struct cbf_instr *e = ins(f, 0, 3);
	CHECK_INT(strv_len(e->argv), 3);
	CHECK_STR(e->argv[0], "80/tcp");
	CHECK_STR(e->argv[1], "53/udp");
	CHECK_STR(e->argv[2], "8000-8010/tcp");
	CHECK_STR(ins(f, 0, 4)->argv[1], "/logs");
	CHECK(ins(f, 0, 5)->exec_form);
	CHECK_STR(ins(f, 0, 5)->argv[0], "/srv/data");
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nEXPOSE 80 0\n", "Cblockfile:2:11: ", "not a port"));
	CHECK(rd_fails("FROM a\nEXPOSE 80/icmp\n", "Cblockfile:2:8: ", "protocol"));
	CHECK(rd_fails("FROM a\nEXPOSE 90-80\n", "Cblockfile:2:8: ", "not a port"));
	CHECK(rd_fails("FROM a\nUSER a b\n", "Cblockfile:2:6: ", "USER[:GROUP]"));
	CHECK(rd_fails("FROM a\nVOLUME [\"/a\",]\n", "Cblockfile:2:14: ", "bad JSON array"));
	CHECK(rd_fails("FROM a\nVOLUME /a data\n", "Cblockfile:2:11: ", "path is absolute"));
	CHECK(rd_fails("FROM a\nVOLUME [\"/a\", \"b\"]\n", "Cblockfile:2:8: ", "path is absolute"));
}

TEST(healthcheck)
{
	struct cbf_file *f = rd("FROM a\n"
				"HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s "
				"--retries=3 CMD wget -q -O- http://localhost/\n"
				"HEALTHCHECK CMD [\"/bin/check\"]\n"
				"HEALTHCHECK NONE\n");
	CHECK(f);
	const struct cbf_instr *h = ins(f, 0, 0);
	CHECK_INT(h->kind, CBF_HEALTHCHECK);
	CHECK_INT(h->health.interval_ns, 30000000000LL);
	CHECK_INT(h->health.timeout_ns, 5000000000LL);
	CHECK_INT(h->health.start_period_ns, 90000000000LL);
	CHECK_INT(h->health.retries, 3);
	CHECK_STR(h->shell, "wget -q -O- http://localhost/");
	CHECK(ins(f, 0, 1)->exec_form);
	CHECK_STR(ins(f, 0, 1)->argv[0], "/bin/check");
	CHECK(ins(f, 0, 2)->health.none);
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nHEALTHCHECK --interval=soon CMD x\n",
		       "Cblockfile:2:13: ", "not a duration"));
	/* A duration too large to count in nanoseconds is refused, not wrapped. */
	CHECK(rd_fails("FROM a\nHEALTHCHECK --interval=99999999999h CMD x\n",
		       "Cblockfile:2:13: ", "not a duration"));
	CHECK(rd_fails("FROM a\nHEALTHCHECK --retries=x CMD x\n", "Cblockfile:2:13: ", "count"));
	CHECK(rd_fails("FROM a\nHEALTHCHECK wget x\n", "Cblockfile:2:13: ", "CMD COMMAND or NONE"));
	CHECK(rd_fails("FROM a\nHEALTHCHECK CMD\n", "Cblockfile:2:16: ", "needs a command"));
	CHECK(rd_fails("FROM a\nHEALTHCHECK --retries=1 NONE\n", "Cblockfile:2:25: ", "no flags"));
}

TEST(cblocks_instructions)
{
	struct cbf_file *f = rd("FROM base\n"
				"RUN \"mkdir -p /new/root\"\n"
				"ROOTPIVOT /new\n"
				"OSRELEASE 15.1-STABLE\n"
				"AUDITCFG \"ex,pc\"\n");
	CHECK(f);
	CHECK_INT(ins(f, 0, 1)->kind, CBF_ROOTPIVOT);
	CHECK_STR(ins(f, 0, 1)->value, "/new");
	CHECK_INT(ins(f, 0, 2)->kind, CBF_OSRELEASE);
	CHECK_STR(ins(f, 0, 2)->value, "15.1-STABLE");
	CHECK_INT(ins(f, 0, 3)->kind, CBF_AUDITCFG);
	CHECK_STR(ins(f, 0, 3)->value, "ex,pc");
	cbf_file_free(f);
	CHECK(rd_fails("FROM a\nROOTPIVOT /\n", "Cblockfile:2:11: ", "below /"));
	CHECK(rd_fails("FROM a\nROOTPIVOT new/../x\n", "Cblockfile:2:11: ", "absolute"));
	CHECK(rd_fails("FROM a\nOSRELEASE 15 STABLE\n", "Cblockfile:2:11: ", "release name"));
	CHECK(rd_fails("FROM a\nAUDITCFG \"ex; rm\"\n", "Cblockfile:2:10: ", "audit classes"));
	CHECK(rd_fails("FROM a\nOSRELEASE 14.3\nOSRELEASE 15.0\n", "Cblockfile:3:1: ", "twice"));
}

TEST(continuation_comments_case)
{
	struct cbf_file *f = rd("# a comment before anything\n"
				"\n"
				"  from a\n"
				"run echo one \\\n"
				"# a comment inside the continuation\n"
				"\n"
				"    two \\   \n"
				"three\n"
				"   # indented comment\n"
				"Env A=1 \\\r\n"
				"  B=2\r\n"
				"WorkDir /x # not a comment\n");
	CHECK(f);
	CHECK_INT(f->stages[0].n, 3);
	CHECK_STR(ins(f, 0, 0)->shell, "echo one     two three");
	CHECK_INT(ins(f, 0, 0)->line, 4);
	CHECK_INT(ins(f, 0, 1)->nkv, 2);
	CHECK_STR(ins(f, 0, 1)->kv[1].value, "2");
	CHECK_STR(ins(f, 0, 2)->value, "/x # not a comment");
	cbf_file_free(f);
}

TEST(byte_order_mark)
{
	struct cbf_file *f = rd("\xef\xbb\xbf# escape=`\nFROM a\nRUN a `\n b\n");
	CHECK(f);
	CHECK_INT(f->escape, '`');
	CHECK_STR(ins(f, 0, 0)->shell, "a  b");
	cbf_file_free(f);
	CHECK(rd_fails("\xef\xbb\xbf"
		       "FROM a\nNOPE\n",
		       "Cblockfile:2:1: ", "unknown"));
}

TEST(escape_directive)
{
	struct cbf_file *f = rd("# escape=`\n"
				"FROM a\n"
				"RUN dir c:\\ `\n"
				"  && echo ok\n"
				"ENV P=c:\\x\n");
	CHECK(f);
	CHECK_INT(f->escape, '`');
	CHECK_STR(ins(f, 0, 0)->shell, "dir c:\\   && echo ok");
	CHECK_STR(ins(f, 0, 1)->kv[0].value, "c:\\x");
	cbf_file_free(f);
}

TEST(errors_name_position)
{
	CHECK(rd_fails("RUN x\n", "Cblockfile:1:1: ", "before the first FROM"));
	CHECK(rd_fails("", "Cblockfile:1:1: ", "no FROM"));
	CHECK(rd_fails("# nothing\n\n", "Cblockfile:", "no FROM"));
	CHECK(rd_fails("FROM a\n  FETCH x\n", "Cblockfile:2:3: ", "unknown instruction \"FETCH\""));
	CHECK(rd_fails("FROM a\n  RUN\n", "Cblockfile:2:3: ", "needs an argument"));
	CHECK(rd_fails("FROM a\n\"RUN\" x\n", "Cblockfile:2:1: ", "expected an instruction"));
	/* A lone backslash is an empty logical line (found by fuzz_cblockfile: UB on NULL). */
	CHECK(rd_fails("\\", "Cblockfile:1:", "expected an instruction"));
	CHECK(rd_fails("FROM a\nRUN [\"a\", b]\n", "Cblockfile:2:11: ", "bad JSON array"));
	CHECK(rd_fails("FROM a\nCMD [\"a\"] x\n", "Cblockfile:2:11: ", "after the closing"));
	CHECK(rd_fails("FROM a\nCMD [\"a\n", "Cblockfile:2:8: ", "unterminated string"));
	CHECK(rd_fails("FROM a\nCMD [\"\\x\"]\n", "Cblockfile:2:7: ", "bad escape"));
	CHECK(rd_fails("FROM a\nCMD [\"\\ud800\"]\n", "Cblockfile:2:13: ", "surrogate"));
	/* Positions survive continuations: the bad quote is on line 4. */
	CHECK(rd_fails("FROM a\nCOPY a \\\n  b \\\n  \"c /d/\n",
		       "Cblockfile:4:3: ", "unterminated double quote"));
	CHECK(rd_fails("FROM a\nENV X=${Y\n", "Cblockfile:2:7: ", "missing '}'"));
	CHECK(rd_fails("FROM a\nENV X=${Y#z}\n", "Cblockfile:2:7: ", "unsupported substitution"));
	CHECK(rd_fails("FROM a\nENV X=${}\n", "Cblockfile:2:7: ", "variable name"));
	CHECK(rd_fails("FROM a AS x\nFROM b AS X\n", "Cblockfile:2:11: ", "already used"));
	CHECK(rd_fails("FROM a AS 1x\n", "Cblockfile:1:11: ", "stage name"));
	CHECK(rd_fails("FROM a b\n", "Cblockfile:1:8: ", "FROM IMAGE [AS NAME]"));
	CHECK(rd_fails("FROM\n", "Cblockfile:1:1: ", "needs an image"));
	CHECK(rd_fails("FROM --platform=x a\n", "Cblockfile:1:6: ", "flag"));
	CHECK(rd_fails("FROM a\nRUN --mount=type=cache,target=/root/.cache make\n",
		       "Cblockfile:2:5: ", "RUN does not take the flag --mount"));
	CHECK(rd_fails("FROM a\nRUN <<EOF\necho hi\nEOF\n", "Cblockfile:2:5: ", "heredocs"));
	struct cbf_file *f = NULL;
	static const char nul[] = "FROM a\nRUN x\0y\n";
	CHECK(cbf_read("Cblockfile", nul, sizeof(nul) - 1, &f, &err) < 0);
	CHECK_STR(err.msg, "Cblockfile:2:6: NUL byte in the file; a Cblockfile is text");
	/* Values end up in config.json, so the file must be UTF-8. */
	CHECK(rd_fails("FROM a\nENV A=\xc3\xa9 B=\xe9\n", "Cblockfile:2:12: ", "not UTF-8"));
	CHECK(rd_fails("FROM a\nENV A=\xed\xa0\x80\n", "Cblockfile:2:7: ", "not UTF-8"));
	CHECK(rd_fails("FROM a\nENV A=\xc0\xaf\n", "Cblockfile:2:7: ", "not UTF-8"));
	f = rd("FROM a\nENV A=\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n");
	CHECK(f);
	cbf_file_free(f);
	f = NULL;
	/* The file name given is the one in the message. */
	CHECK(cbf_read("web/Cblockfile", "FROM a\nNOPE\n", 12, &f, &err) < 0);
	CHECK(strncmp(err.msg, "web/Cblockfile:2:1: ", 20) == 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
}

static char *const *base_env(const char *ref, void *ctx)
{
	static char *const env[] = {"PATH=/usr/bin:/bin", "HOME=/root", NULL};
	return strcmp(ref, "debian:12") == 0 ? env : NULL;
}

TEST(substitution)
{
	struct cbf_file *f =
		rd("ARG BASE=debian\n"
		   "ARG TAG\n"
		   "FROM ${BASE}:${TAG:-11}\n"
		   "ARG TAG\n"
		   "ARG DIR=/opt/$TAG\n"
		   "ENV PATH=$PATH:/opt/bin A=${UNSET:-dflt} B=${TAG:+set} C=${UNSET:+x}\n"
		   "ENV D=\"$A-x\" E='$A' F=\\$A G=${EMPTY-e}/${EMPTY:-ce}\n"
		   "WORKDIR $DIR\n"
		   "COPY $DIR/a ${DIR}/b /dst/\n"
		   "EXPOSE ${PORT:-8080}\n"
		   "USER ${U:-app}\n"
		   "LABEL v=$TAG\n"
		   "RUN echo $TAG\n"
		   "ROOTPIVOT /new$TAG\n");
	CHECK(f);
	char *args[] = {"TAG=12", "EMPTY=", "UNUSED=1", NULL};
	struct cbf_expand_opts o = {.build_args = args, .base_env = base_env};
	CHECK_INT(cbf_expand(f, &o, &err), 0);
	CHECK_STR(f->stages[0].base, "debian:12");
	const struct cbf_instr *e = ins(f, 0, 2);
	CHECK_STR(e->kv[0].value, "/usr/bin:/bin:/opt/bin");
	CHECK_STR(e->kv[1].value, "dflt");
	CHECK_STR(e->kv[2].value, "set");
	CHECK_STR(e->kv[3].value, "");
	e = ins(f, 0, 3);
	CHECK_STR(e->kv[0].value, "dflt-x");
	CHECK_STR(e->kv[1].value, "$A");
	CHECK_STR(e->kv[2].value, "$A");
	/* EMPTY is a build argument but no ARG declares it: it stays unset. */
	CHECK_STR(e->kv[3].value, "e/ce");
	CHECK_STR(ins(f, 0, 1)->kv[0].value, "/opt/12");
	CHECK_STR(ins(f, 0, 4)->value, "/opt/12");
	CHECK_STR(ins(f, 0, 5)->argv[1], "/opt/12/b");
	CHECK_STR(ins(f, 0, 6)->argv[0], "8080/tcp");
	CHECK_STR(ins(f, 0, 7)->value, "app");
	CHECK_STR(ins(f, 0, 8)->kv[0].value, "12");
	/* RUN is left to the shell, which sees ARGs in its environment. */
	CHECK_STR(ins(f, 0, 9)->shell, "echo $TAG");
	CHECK_STR(ins(f, 0, 10)->value, "/new12");
	/* Expanding again with other arguments starts from the text as written. */
	char *args2[] = {"TAG=13", NULL};
	o.build_args = args2;
	CHECK_INT(cbf_expand(f, &o, &err), 0);
	CHECK_STR(f->stages[0].base, "debian:13");
	CHECK_STR(ins(f, 0, 2)->kv[0].value, ":/opt/bin"); /* no base env for debian:13 */
	CHECK_STR(ins(f, 0, 4)->value, "/opt/13");
	cbf_file_free(f);
}

TEST(substitution_scopes)
{
	/* A global ARG is seen in a stage only when the stage declares it again;
	   ENV wins over ARG; a FROM stage inherits the ENV of that stage. */
	struct cbf_file *f = rd("ARG G=global\n"
				"FROM a AS one\n"
				"ENV X=$G\n"
				"ARG G\n"
				"ARG V=arg\n"
				"ENV V=env\n"
				"ENV Y=$G Z=$V\n"
				"FROM one\n"
				"ENV W=$Y\n"
				"ARG E\n"
				"ENV F=${E-unset}/${E:-empty}\n");
	CHECK(f);
	char *args[] = {"E=", NULL};
	struct cbf_expand_opts o = {.build_args = args};
	CHECK_INT(cbf_expand(f, &o, &err), 0);
	CHECK_STR(ins(f, 0, 0)->kv[0].value, "");
	CHECK_STR(ins(f, 0, 1)->kv[0].value, "global");
	CHECK_STR(ins(f, 0, 4)->kv[0].value, "global");
	CHECK_STR(ins(f, 0, 4)->kv[1].value, "env");
	CHECK_STR(ins(f, 1, 0)->kv[0].value, "global");
	CHECK_STR(ins(f, 1, 2)->kv[0].value, "/empty");
	CHECK_INT(f->stages[1].base_kind, CBF_BASE_STAGE);
	cbf_file_free(f);
}

TEST(substitution_errors)
{
	struct cbf_file *f = rd("FROM a\nEXPOSE $P\n");
	CHECK(f);
	char *args[] = {"P=http", NULL};
	struct cbf_expand_opts o = {.build_args = args};
	CHECK(cbf_expand(f, &o, &err) < 0);
	CHECK(strncmp(err.msg, "Cblockfile:2:8: ", 16) == 0);
	CHECK(strstr(err.msg, "not a port") != NULL);
	cbf_file_free(f);
	f = rd("ARG B\nFROM $B\n");
	CHECK(f);
	CHECK(cbf_expand(f, NULL, &err) < 0);
	CHECK(strncmp(err.msg, "Cblockfile:2:1: ", 16) == 0);
	CHECK(strstr(err.msg, "empty after substitution") != NULL);
	cbf_file_free(f);
	f = rd("FROM a\nWORKDIR $D\n");
	CHECK(f);
	CHECK(cbf_expand(f, NULL, &err) < 0);
	CHECK(strncmp(err.msg, "Cblockfile:2:9: ", 16) == 0);
	cbf_file_free(f);
	f = rd("FROM a\nENV X=${A:-${B:-${C:-${D:-${E:-${F:-${G:-${H:-${I:-${J}}}}}}}}}}\n");
	CHECK(f == NULL);
	CHECK(strstr(err.msg, "nested too deeply") != NULL);
}

TEST(canonical_text)
{
	struct cbf_file *f = rd("FROM a\n"
				"COPY a /b\n"
				"COPY [\"a\", \"/b\"]\n"
				"copy   a    /b\n"
				"RUN echo hi\n"
				"RUN [\"echo\", \"hi\"]\n"
				"ARG X=1\n");
	CHECK(f);
	char *c0 = cbf_instr_canon(ins(f, 0, 0));
	char *c1 = cbf_instr_canon(ins(f, 0, 1));
	char *c2 = cbf_instr_canon(ins(f, 0, 2));
	char *r0 = cbf_instr_canon(ins(f, 0, 3));
	char *r1 = cbf_instr_canon(ins(f, 0, 4));
	char *a = cbf_instr_canon(ins(f, 0, 5));
	CHECK_STR(c0, c1);
	CHECK_STR(c0, c2);
	CHECK(strcmp(r0, r1) != 0);
	CHECK_STR(a, "ARG \"X\"");
	free(c0);
	free(c1);
	free(c2);
	free(r0);
	free(r1);
	free(a);
	cbf_file_free(f);
}

TEST(example_file)
{
	/* A cblocks example file reads as written there. */
	const char *text = "FROM base:14.3 AS go_builder\n"
			   "  ADD . .\n"
			   "  ENV ASSUME_ALWAYS_YES = \"YES\"\n"
			   "  RUN \"pkg install go125\"\n"
			   "  WORKDIR /fcgi\n"
			   "  ENV PATH = \"$PATH:/usr/local/go125/bin\"\n"
			   "  RUN \"go build\"\n"
			   "\n"
			   "FROM base:14.3\n"
			   "  COPY --FROM go_builder /fcgi/fcgi /usr/local/bin\n"
			   "  ADD server.crt /tls\n"
			   "\n"
			   "AUDITCFG \"ex,pc\"\n"
			   "\n"
			   "ENTRYPOINT [ \"/usr/local/bin/h2o\", \"-c\", \"/h2o.conf\" ]\n";
	struct cbf_file *f = rd(text);
	CHECK(f);
	CHECK_INT(f->nstages, 2);
	CHECK_INT(f->stages[0].n, 6);
	CHECK_INT(f->stages[1].n, 4);
	CHECK_INT(ins(f, 1, 0)->from_stage, 0);
	CHECK_STR(ins(f, 0, 2)->shell, "pkg install go125");
	CHECK_INT(strv_len(ins(f, 1, 3)->argv), 3);
	cbf_file_free(f);
}

TEST(size_limit)
{
	struct cbf_file *f = NULL;
	size_t n = CBF_MAX_SIZE + 1;
	char *big = xmalloc(n);
	memset(big, '#', n);
	CHECK(cbf_read("big", big, n, &f, &err) < 0);
	free(big);
	CHECK(strstr(err.msg, "at most") != NULL);
}

TEST_MAIN_BEGIN("cblockfile")
RUN(from_forms);
RUN(run_shell_and_exec);
RUN(cmd_entrypoint_shell);
RUN(copy_add_forms);
RUN(copy_errors);
RUN(env_forms);
RUN(label_arg);
RUN(workdir_user_expose_volume);
RUN(healthcheck);
RUN(cblocks_instructions);
RUN(continuation_comments_case);
RUN(escape_directive);
RUN(byte_order_mark);
RUN(errors_name_position);
RUN(substitution);
RUN(substitution_scopes);
RUN(substitution_errors);
RUN(canonical_text);
RUN(example_file);
RUN(size_limit);
TEST_MAIN_END
