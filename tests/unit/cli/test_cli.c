/*
 * Unit tests for the pure parts of the CLI: flag parsing into API requests
 * and the output formatting. The sources are included directly because the
 * CLI is a program, not part of libclbsd.
 */
#include "test.h"

#include "cli/cli_args.c"
#include "cli/format.c"
#include "cli/request.c"
#include "cli/template.c"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* JSON compact text of a request, for exact comparisons. */
static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

TEST(run_minimal)
{
	char *argv[] = {"run", "forge"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	autofree char *s = dump(o.req);
	CHECK_STR(s, "{\"auto_remove\":false,\"image\":\"forge\",\"stdin\":false,\"tty\":false}");
	CHECK(!o.detach && !o.rm && !o.tty && !o.interactive);
	run_opts_release(&o);
}

TEST(run_all_flags)
{
	char *argv[] = {"run",	     "-d",	    "--rm",	  "-t",
			"-i",	     "--name",	    "web",	  "-e",
			"A=1",	     "--env=B=x y", "-v",	  "/srv/x:/data:ro",
			"-v",	     "/a:/b",	    "-w",	  "/srv",
			"-u",	     "1000:1000",   "--hostname", "web.home.lan",
			"--memory",  "256M",	    "--pids",	  "128",
			"--cpus",    "0.5",	    "--restart",  "on-failure:3",
			"forge:1.0", "httpd",	    "-f"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	CHECK(o.detach && o.rm && o.tty && o.interactive);
	autofree char *s = dump(o.req);
	CHECK_STR(s,
		  "{\"auto_remove\":true,\"command\":[\"httpd\",\"-f\"],\"cpus\":0.5,"
		  "\"env\":[\"A=1\",\"B=x y\"],\"hostname\":\"web.home.lan\","
		  "\"image\":\"forge:1.0\",\"memory\":268435456,\"name\":\"web\",\"pids\":128,"
		  "\"restart\":\"on-failure:3\",\"stdin\":true,\"tty\":true,\"user\":\"1000:1000\","
		  "\"volumes\":[{\"dest\":\"/data\",\"readonly\":true,\"source\":\"/srv/x\"},"
		  "{\"dest\":\"/b\",\"readonly\":false,\"source\":\"/a\"}],\"workdir\":\"/srv\"}");
	run_opts_release(&o);
}

/* Options end at IMAGE: what follows belongs to the container's command. */
TEST(run_stops_at_image)
{
	char *argv[] = {"run", "--rm", "forge", "ls", "-l", "--name", "x", "--", "-d"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	CHECK(o.rm && !o.detach);
	autofree char *s = dump(json_object_get(o.req, "command"));
	CHECK_STR(s, "[\"ls\",\"-l\",\"--name\",\"x\",\"--\",\"-d\"]");
	CHECK(json_object_get(o.req, "name") == NULL);
	run_opts_release(&o);
}

TEST(run_double_dash)
{
	char *argv[] = {"run", "-t", "--", "forge", "sh"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	CHECK_STR(json_string_value(json_object_get(o.req, "image")), "forge");
	run_opts_release(&o);
}

TEST(run_help)
{
	char *argv[] = {"run", "--help"};
	char *argv2[] = {"create", "-h", "forge"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 1);
	CHECK_INT(cli_parse_run(ARGC(argv2), argv2, false, &o, &err), 1);
}

/* Each bad value is refused locally with a reason that names it. */
static int bad(bool is_run, char *a1, char *a2, const char *want)
{
	char *argv[] = {"run", a1, a2, "forge"};
	int argc = a2 ? 4 : 3;
	if (!a2)
		argv[2] = "forge";
	struct run_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_parse_run(argc, argv, is_run, &o, &err);
	if (r >= 0) {
		run_opts_release(&o);
		printf("# accepted %s %s\n", a1, a2 ? a2 : "");
		return 0;
	}
	if (err.kind != CLBSD_E_INVALID || !strstr(err.msg, want)) {
		printf("# %s %s: \"%s\" lacks \"%s\"\n", a1, a2 ? a2 : "", err.msg, want);
		return 0;
	}
	return 1;
}

TEST(run_rejects)
{
	CHECK(bad(true, "--memory", "12Q", "12Q"));
	CHECK(bad(true, "--memory", "0", "memory"));
	CHECK(bad(true, "--pids", "x", "pids"));
	CHECK(bad(true, "--pids", "0", "pids"));
	CHECK(bad(true, "--cpus", "0", "cpus"));
	CHECK(bad(true, "--cpus", "nan", "cpus"));
	CHECK(bad(true, "--cpus", "1x", "cpus"));
	/* A bare word is a named volume now; a relative path is still refused. */
	CHECK(bad(true, "-v", "relative/dir:/x", "relative/dir"));
	CHECK(bad(true, "-v", "Data:/x", "volume name"));
	CHECK(bad(true, "-v", "/x:rel", "rel"));
	CHECK(bad(true, "-v", "/x", "SRC:DST"));
	CHECK(bad(true, "-v", "/x/../y:/z", "/x/../y"));
	CHECK(bad(true, "-v", "/x:/y:rx", "rx"));
	CHECK(bad(true, "--name", "../x", "../x"));
	CHECK(bad(true, "--name", "Web", "Web"));
	CHECK(bad(true, "--restart", "sometimes", "sometimes"));
	CHECK(bad(true, "--restart", "on-failure:x", "on-failure:x"));
	CHECK(bad(true, "-e", "=x", "=x"));
	CHECK(bad(true, "-e", "A B=c", "blanks"));
	CHECK(bad(true, "-w", "rel", "rel"));
	CHECK(bad(true, "-u", "a b", "a b"));
	CHECK(bad(true, "--hostname", "-x", "-x"));
	CHECK(bad(true, "--bogus", NULL, "unknown option '--bogus'"));
	CHECK(bad(true, "-z", NULL, "unknown option '-z'"));
	CHECK(bad(false, "-d", NULL, "unknown option '-d'"));
	CHECK(bad(false, "--detach", NULL, "unknown option '--detach'"));
}

/* --integrity-every, -exclude and -include become the request's "integrity", in order. */
TEST(run_integrity_paths)
{
	char *argv[] = {"create",   "--integrity-exclude",
			"/var/log", "--integrity-include",
			"/data",    "--integrity-exclude",
			"/tmp",	    "--integrity-every",
			"1h",	    "forge"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, false, &o, &err), 0);
	autofree char *s = dump(json_object_get(o.req, "integrity"));
	CHECK_STR(s, "{\"every\":\"1h\",\"exclude\":[\"/var/log\",\"/tmp\"],"
		     "\"include\":[\"/data\"]}");
	run_opts_release(&o);
	CHECK(bad(true, "--integrity-every", "500ms", "at least 1s"));
	CHECK(bad(true, "--integrity-every", "often", "often"));
	CHECK(bad(true, "--integrity-exclude", "var/log", "var/log"));
	CHECK(bad(false, "--integrity-include", "/a/../b", "absolute path"));
}

/* -e KEY without a value takes the client's own value, like docker run. */
TEST(env_bare_key)
{
	char *argv[] = {"run", "-e", "CLBSD_T_SET", "-e", "CLBSD_T_UNSET", "-e", "X=1", "forge"};
	struct run_opts o;
	struct clbsd_err err;
	setenv("CLBSD_T_SET", "from shell", 1);
	unsetenv("CLBSD_T_UNSET");
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	json_t *env = json_object_get(o.req, "env");
	CHECK_INT(json_array_size(env), 2);
	CHECK_STR(json_string_value(json_array_get(env, 0)), "CLBSD_T_SET=from shell");
	CHECK_STR(json_string_value(json_array_get(env, 1)), "X=1");
	run_opts_release(&o);
}

TEST(run_missing)
{
	char *argv[] = {"run", "-d"};
	char *argv2[] = {"run", "--name"};
	char *argv3[] = {"run", "Bad:Ref"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK(cli_parse_run(ARGC(argv), argv, true, &o, &err) < 0);
	CHECK_STR(err.msg, "missing IMAGE");
	CHECK(cli_parse_run(ARGC(argv2), argv2, true, &o, &err) < 0);
	CHECK_STR(err.msg, "option '--name' needs a value");
	CHECK(cli_parse_run(ARGC(argv3), argv3, true, &o, &err) < 0);
	CHECK(strstr(err.msg, "Bad:Ref") != NULL);
}

TEST(restart_policies)
{
	struct clbsd_err err;
	CHECK_INT(cli_check_restart("no", &err), 0);
	CHECK_INT(cli_check_restart("always", &err), 0);
	CHECK_INT(cli_check_restart("on-failure", &err), 0);
	CHECK_INT(cli_check_restart("on-failure:5", &err), 0);
	CHECK(cli_check_restart("on-failure:", &err) < 0);
	CHECK(cli_check_restart("on-failure:-1", &err) < 0);
	CHECK(cli_check_restart("unless-stopped", &err) < 0);
}

TEST(users)
{
	struct clbsd_err err;
	CHECK_INT(cli_check_user("0", &err), 0);
	CHECK_INT(cli_check_user("1000:1000", &err), 0);
	CHECK_INT(cli_check_user("nobody", &err), 0);
	CHECK_INT(cli_check_user("www-data:www-data", &err), 0);
	CHECK(cli_check_user("", &err) < 0);
	CHECK(cli_check_user(":1", &err) < 0);
	CHECK(cli_check_user("1:", &err) < 0);
	CHECK(cli_check_user("a:b:c", &err) < 0);
	CHECK(cli_check_user("-x", &err) < 0);
}

TEST(exec_parse)
{
	char *argv[] = {"exec", "-ti", "-e", "K=V", "-w", "/tmp", "-u", "0", "web", "ls", "-l"};
	struct exec_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_exec(ARGC(argv), argv, &o, &err), 0);
	CHECK_STR(o.name, "web");
	CHECK(o.tty && o.interactive);
	autofree char *s = dump(o.req);
	CHECK_STR(s, "{\"command\":[\"ls\",\"-l\"],\"env\":[\"K=V\"],\"interactive\":true,"
		     "\"stdin\":true,\"tty\":true,\"user\":\"0\",\"workdir\":\"/tmp\"}");
	exec_opts_release(&o);

	char *argv2[] = {"exec", "web", "sh", "-c", "echo hi"};
	CHECK_INT(cli_parse_exec(ARGC(argv2), argv2, &o, &err), 0);
	autofree char *s2 = dump(o.req);
	CHECK_STR(s2, "{\"command\":[\"sh\",\"-c\",\"echo hi\"],\"interactive\":false,"
		      "\"stdin\":false,\"tty\":false}");
	exec_opts_release(&o);

	char *argv3[] = {"exec", "web"};
	CHECK(cli_parse_exec(ARGC(argv3), argv3, &o, &err) < 0);
	CHECK(strstr(err.msg, "missing CMD") != NULL);
	char *argv4[] = {"exec", "../web", "ls"};
	CHECK(cli_parse_exec(ARGC(argv4), argv4, &o, &err) < 0);
	char *argv5[] = {"exec", "-x", "web", "ls"};
	CHECK(cli_parse_exec(ARGC(argv5), argv5, &o, &err) < 0);
	CHECK_STR(err.msg, "unknown option '-x'");
}

TEST(durations)
{
	char b[64];
	const long long S = 1000000000LL;
	struct {
		long long ns;
		const char *want;
	} cases[] = {
		{0, "Less than a second"},
		{S / 2, "Less than a second"},
		{S, "1 second"},
		{59 * S, "59 seconds"},
		{60 * S, "About a minute"},
		{119 * S, "About a minute"},
		{120 * S, "2 minutes"},
		{59 * 60 * S, "59 minutes"},
		{60 * 60 * S, "About an hour"},
		{90 * 60 * S, "2 hours"},
		{47 * 3600 * S, "47 hours"},
		{48 * 3600 * S, "2 days"},
		{14 * 86400 * S, "2 weeks"},
		{60 * 86400 * S, "2 months"},
		{800 * 86400 * S, "2 years"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fmt_duration(cases[i].ns, b, sizeof(b));
		CHECK_STR(b, cases[i].want);
	}
	fmt_ago(10 * S, 130 * S, b, sizeof(b));
	CHECK_STR(b, "2 minutes ago");
	/* A daemon clock slightly ahead never shows negative times. */
	fmt_ago(200 * S, 130 * S, b, sizeof(b));
	CHECK_STR(b, "Less than a second ago");
}

TEST(sizes)
{
	char b[32];
	fmt_size(0, b, sizeof(b));
	CHECK_STR(b, "0B");
	fmt_size(999, b, sizeof(b));
	CHECK_STR(b, "999B");
	fmt_size(1234567, b, sizeof(b));
	CHECK_STR(b, "1.23MB");
	fmt_size(999999, b, sizeof(b));
	CHECK_STR(b, "1MB");
	fmt_size(5000000000LL, b, sizeof(b));
	CHECK_STR(b, "5GB");
	fmt_bytes(1536 * 1024, b, sizeof(b));
	CHECK_STR(b, "1.5MiB");
	fmt_bytes(512, b, sizeof(b));
	CHECK_STR(b, "512B");
	fmt_bytes(8LL << 30, b, sizeof(b));
	CHECK_STR(b, "8GiB");
}

TEST(short_ids_and_commands)
{
	autofree char *a = fmt_short_id("5f0c1234567890abcdef");
	CHECK_STR(a, "5f0c12345678");
	autofree char *b = fmt_short_id("sha256:9a1b1234567890ab");
	CHECK_STR(b, "9a1b12345678");
	json_t *argv = json_pack("[s,s,s]", "/bin/sh", "-c", "while true; do sleep 1; done");
	autofree char *c = fmt_command(argv, 20);
	CHECK_STR(c, "\"/bin/sh -c while tr…\"");
	json_decref(argv);
	argv = json_pack("[s]", "/bin/sh");
	autofree char *d = fmt_command(argv, 20);
	CHECK_STR(d, "\"/bin/sh\"");
	json_decref(argv);
}

#define T0 "2026-11-22T20:00:00.000000000Z"
static const long long NOW = 1795377600LL * 1000000000LL + 300LL * 1000000000LL; /* T0 + 5 min */

TEST(status_column)
{
	int64_t t0;
	CHECK_INT(time_parse_rfc3339(T0, &t0), 0);
	CHECK_INT(t0 + 300LL * 1000000000LL, NOW);
	json_t *c = json_pack("{s:s, s:s}", "state", "running", "started_at", T0);
	autofree char *a = fmt_status(c, NOW);
	CHECK_STR(a, "Up 5 minutes");
	json_decref(c);
	c = json_pack("{s:s, s:i, s:s}", "state", "exited", "exit_code", 137, "finished_at", T0);
	autofree char *b = fmt_status(c, NOW);
	CHECK_STR(b, "Exited (137) 5 minutes ago");
	json_decref(c);
	c = json_pack("{s:s, s:n}", "state", "created", "started_at");
	autofree char *d = fmt_status(c, NOW);
	CHECK_STR(d, "Created");
	json_decref(c);
	c = json_pack("{s:s, s:i, s:s}", "state", "restarting", "exit_code", 1, "finished_at", T0);
	autofree char *e = fmt_status(c, NOW);
	CHECK_STR(e, "Restarting (1) 5 minutes ago");
	json_decref(c);
	c = json_pack("{s:s, s:s, s:{s:s}}", "state", "running", "started_at", T0, "health",
		      "status", "healthy");
	autofree char *f = fmt_status(c, NOW);
	CHECK_STR(f, "Up 5 minutes (healthy)");
	json_decref(c);
}

TEST(table_alignment)
{
	static const char *const h[] = {"A", "LONGER", "C"};
	static const char *const r1[] = {"xxxx", "y", ""};
	static const char *const r2[] = {"é…", NULL, "z"};
	struct table t;
	table_init(&t, 3, h);
	table_add(&t, r1);
	table_add(&t, r2);
	autofree char *s = table_render(&t);
	CHECK_STR(s, "A      LONGER   C\n"
		     "xxxx   y\n"
		     "é…              z\n");
	table_release(&t);
}

TEST(ps_table)
{
	json_t *list = json_pack(
		"[{s:s, s:s, s:s, s:s, s:i, s:s, s:{s:[s,s]},"
		"   s:{s:s, s:[{s:s,s:s},{s:s,s:s}], s:[s,s]}},"
		" {s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:{s:[s]}, s:{s:s, s:[]}}]",
		"name", "web", "id", "5f0c1234567890abcdef", "image", "forge:latest", "state",
		"running", "pid", 1234, "started_at", T0, "config", "command", "httpd", "-f",
		"network", "mode", "networks", "networks", "name", "default", "ip", "10.88.0.2",
		"name", "lan", "ip", "10.9.0.3", "publish", "8080:80/tcp", "127.0.0.1:53:53/udp",
		"name", "db", "id", "abcdef1234567890", "image", "forge:latest", "kind", "docker",
		"state", "exited", "pid", 0, "exit_code", 0, "finished_at", T0, "config", "command",
		"/bin/sh", "network", "mode", "host", "networks");
	autofree char *s = fmt_ps(list, NOW);
	CHECK_STR(s, "NAME   ID             IMAGE          KIND     COMMAND      STATE     "
		     "STATUS                     PID    ADDRESS              PORTS\n"
		     "web    5f0c12345678   forge:latest   native   \"httpd -f\"   running   "
		     "Up 5 minutes               1234   10.88.0.2,10.9.0.3   8080->80/tcp, "
		     "127.0.0.1:53->53/udp\n"
		     "db     abcdef123456   forge:latest   docker   \"/bin/sh\"    exited    "
		     "Exited (0) 5 minutes ago   -      host\n");
	json_decref(list);
}

/* ps -a: a moved declaration is a row of its own; a container kept here says it moved. */
TEST(ps_moved_rows)
{
	json_t *list = json_pack("[{s:s, s:s, s:s, s:s, s:i, s:i, s:s}]", "name", "kept", "id",
				 "abcdef1234567890", "image", "forge:latest", "state", "exited",
				 "pid", 0, "exit_code", 0, "finished_at", T0);
	json_t *moved = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s}]", "name", "web", "to",
				  "unix:/x", "at", T0, "name", "kept", "to", "ssh://nas", "at", T0,
				  "to", "nameless");
	fmt_ps_moved(list, moved);
	json_decref(moved);
	CHECK_INT(json_array_size(list), 2);
	json_t *web = json_array_get(list, 1);
	CHECK_STR(json_string_value(json_object_get(web, "state")), "moved");
	CHECK_STR(json_string_value(json_object_get(json_object_get(web, "moved"), "to")),
		  "unix:/x");
	CHECK_STR(json_string_value(json_object_get(json_object_get(web, "moved"), "at")), T0);
	CHECK(!json_object_get(web, "id"));
	autofree char *st = fmt_status(web, NOW);
	CHECK_STR(st, "Moved to unix:/x 5 minutes ago");
	autofree char *s = fmt_ps(list, NOW);
	CHECK_STR(s,
		  "NAME   ID             IMAGE          KIND     COMMAND   STATE    STATUS"
		  "                                                       PID   ADDRESS   PORTS\n"
		  "kept   abcdef123456   forge:latest   native   \"\"        exited   Exited "
		  "(0) 5 minutes ago; moved to ssh://nas 5 minutes ago   -\n"
		  "web                                                     moved    Moved to "
		  "unix:/x 5 minutes ago                               -\n");
	json_decref(list);
	/* No time recorded: where it went, without when. */
	json_t *bare = json_pack("{s:s, s:{s:s}}", "state", "moved", "moved", "to", "unix:/y");
	autofree char *b = fmt_status(bare, NOW);
	CHECK_STR(b, "Moved to unix:/y");
	json_decref(bare);
}

TEST(images_table)
{
	json_t *list = json_pack(
		"[{s:s, s:[s,s], s:s, s:i, s:s}, {s:s, s:[], s:s, s:i, s:n}]", "id",
		"9a1b1234567890ab", "names", "forge:latest", "web", "created", T0, "size", 1234567,
		"digest", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"id", "ffff0000ffff0000", "names", "created", T0, "size", 10, "digest");
	autofree char *s = fmt_images(list, NOW);
	CHECK_STR(s, "NAME           ID             DIGEST                CREATED         SIZE\n"
		     "forge:latest   9a1b12345678   sha256:0123456789ab   5 minutes ago   1.23MB\n"
		     "web:latest     9a1b12345678   sha256:0123456789ab   5 minutes ago   1.23MB\n"
		     "<none>         ffff0000ffff   <none>                5 minutes ago   10B\n");
	json_decref(list);
}

TEST(stats_table)
{
	json_t *a = json_pack("[{s:s, s:I, s:s}]", "name", "web", "cpu_usage_ns",
			      (json_int_t)1000000000, "read_at", "2026-11-22T20:00:00.000000000Z");
	json_t *b = json_pack("[{s:s, s:I, s:s, s:I, s:I, s:i}]", "name", "web", "cpu_usage_ns",
			      (json_int_t)1250000000, "read_at", "2026-11-22T20:00:00.500000000Z",
			      "memory_usage", (json_int_t)(64LL << 20), "memory_limit",
			      (json_int_t)(256LL << 20), "pids_current", 3);
	autofree char *s = fmt_stats(a, b, 500000000, 8LL << 30);
	CHECK_STR(s, "NAME   CPU %    MEM USAGE / LIMIT   MEM %    PIDS\n"
		     "web    50.00%   64MiB / 256MiB      25.00%   3\n");
	/* No limit: the host's memory is the limit, like docker stats. */
	json_object_set_new(json_array_get(b, 0), "memory_limit", json_integer(0));
	autofree char *s2 = fmt_stats(NULL, b, 500000000, 1LL << 30);
	CHECK_STR(s2, "NAME   CPU %   MEM USAGE / LIMIT   MEM %   PIDS\n"
		      "web    --      64MiB / 1GiB        6.25%   3\n");
	json_decref(a);
	json_decref(b);
}

TEST(event_lines)
{
	json_t *ev = json_loads("{\"seq\":12,\"time\":\"" T0 "\",\"type\":\"container.exited\","
				"\"container\":\"web\",\"attrs\":{\"exit_code\":0,\"signal\":0,"
				"\"oom_killed\":false,\"msg\":\"two words\",\"none\":null}}",
				0, NULL);
	CHECK(ev != NULL);
	autofree char *s = fmt_event(ev);
	CHECK_STR(s, T0 " container.exited web exit_code=0 signal=0 oom_killed=false "
			"msg=\"two words\"");
	json_decref(ev);
	ev = json_loads("{\"seq\":1,\"time\":\"" T0 "\",\"type\":\"daemon.started\"}", 0, NULL);
	autofree char *s2 = fmt_event(ev);
	CHECK_STR(s2, T0 " daemon.started -");
	json_decref(ev);
}

TEST(audit_lines_escape_control_bytes)
{
	/* A request path, argv and error with ESC, DEL and C1 CSI: never raw. */
	json_t *rec = json_pack("{s:s,s:i,s:s,s:i,s:s,s:s,s:[s,s],s:s,s:s}", "time", T0, "seq", 3,
				"event", "api", "status", 404, "method", "POST", "path",
				"/v1/containers/\x1b[31mred/stop", "argv", "sh",
				"\x7f\xc2\x9b"
				"2J",
				"error", "no\x1b]0;x\x07", "client",
				"a\x1b"
				"b");
	autofree char *s = fmt_audit(rec);
	for (const char *c = s; *c; c++)
		CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c != 0x7f &&
		      !((unsigned char)c[0] == 0xc2 && (unsigned char)c[1] >= 0x80 &&
			(unsigned char)c[1] <= 0x9f));
	CHECK(strstr(s, "\"/v1/containers/\\u001B[31mred/stop\"") != NULL);
	CHECK(strstr(s, "argv=[\"sh\",\"\\u007F\\u009B2J\"]") != NULL);
	CHECK(strstr(s, "client=\"a\\u001Bb\"") != NULL);
	json_decref(rec);
	struct buf b = BUF_INIT;
	fmt_add_safe(&b, "a\x1b\\b", 4);
	CHECK_STR(b.data, "a\\033\\134b");
	buf_release(&b);
}

TEST(info_text)
{
	json_t *info = json_loads("{\"version\":\"0.1\",\"pid\":7,\"storage\":{\"driver\":\"dir\","
				  "\"overlay\":true},\"x\":[1,\"a\"],\"n\":null}",
				  0, NULL);
	autofree char *s = fmt_info(info);
	CHECK_STR(s, "version: 0.1\npid: 7\nstorage:\n  driver: dir\n  overlay: true\nx: 1, a\n"
		     "n: -\n");
	json_decref(info);
}

TEST(cri_lines)
{
	struct cri_rec r;
	const char *l1 = T0 " stdout F hello world";
	CHECK_INT(cri_parse(l1, strlen(l1), &r), 0);
	CHECK(!r.is_stderr && !r.partial);
	CHECK_INT(r.time_len, strlen(T0));
	CHECK_INT(r.data_len, 11);
	CHECK(memcmp(r.data, "hello world", 11) == 0);
	const char *l2 = T0 " stderr P ";
	CHECK_INT(cri_parse(l2, strlen(l2), &r), 0);
	CHECK(r.is_stderr && r.partial);
	CHECK_INT(r.data_len, 0);
	const char *l3 = T0 " stdout F";
	CHECK_INT(cri_parse(l3, strlen(l3), &r), 0);
	CHECK_INT(r.data_len, 0);
	const char *l4 = T0 " stdout F:x  two  spaces ";
	CHECK_INT(cri_parse(l4, strlen(l4), &r), 0);
	CHECK_INT(r.data_len, strlen(" two  spaces "));
	CHECK(cri_parse("garbage", 7, &r) < 0);
	const char *l5 = T0 " stdin F x";
	CHECK(cri_parse(l5, strlen(l5), &r) < 0);
	const char *l6 = T0 " stdout X x";
	CHECK(cri_parse(l6, strlen(l6), &r) < 0);
}

TEST(log_writer)
{
	struct logw w;
	struct buf out = BUF_INIT, errb = BUF_INIT;
	logw_init(&w, false);
	/* Records split at arbitrary points, partial lines joined, streams separated. */
	const char *in = T0 " stdout P hel"
			    "\n" T0 " stderr F oops\n" T0 " stdout F lo\n" T0 " stdout F last";
	for (size_t off = 0, n = strlen(in); off < n; off += 7)
		logw_feed(&w, in + off, n - off < 7 ? n - off : 7, &out, &errb);
	CHECK_STR(out.data, "hello\n");
	CHECK_STR(errb.data, "oops\n");
	logw_finish(&w, &out, &errb);
	CHECK_STR(out.data, "hello\nlast\n");
	logw_release(&w);
	buf_release(&out);
	buf_release(&errb);

	logw_init(&w, true);
	const char *in2 = T0 " stdout P a\n" T0 " stdout F b\n" T0 " stdout F c\nnot cri\n";
	logw_feed(&w, in2, strlen(in2), &out, &errb);
	CHECK_STR(out.data, T0 " ab\n" T0 " c\nnot cri\n");
	CHECK(errb.len == 0);
	logw_release(&w);
	buf_release(&out);
	buf_release(&errb);
}

/* -v NAME:/path sends the name as the source: the daemon makes or reuses the volume. */
TEST(named_volume)
{
	char *argv[] = {"run", "-v", "data:/srv/data:ro", "-v", "/host:/h", "forge"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, true, &o, &err), 0);
	autofree char *s = dump(json_object_get(o.req, "volumes"));
	CHECK_STR(s, "[{\"dest\":\"/srv/data\",\"readonly\":true,\"source\":\"data\"},"
		     "{\"dest\":\"/h\",\"readonly\":false,\"source\":\"/host\"}]");
	run_opts_release(&o);
}

TEST(stop_signal)
{
	char *argv[] = {"create", "--stop-signal", "SIGQUIT", "forge"};
	struct run_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_run(ARGC(argv), argv, false, &o, &err), 0);
	CHECK_STR(json_string_value(json_object_get(o.req, "stop_signal")), "SIGQUIT");
	run_opts_release(&o);
	CHECK(bad(true, "--stop-signal", "NOPE", "NOPE"));
}

/* A command shaped like stop: options anywhere, NAME... */
static const struct cli_opt t_opts[] = {
	{"time", 't', "SECS", "grace", CLI_K_NONE, "timeout", 0},
	{"force", 'f', NULL, "force", CLI_K_NONE, NULL, 0},
	{"env", 'e', "K=V", "env", CLI_K_NONE, NULL, CLI_OPT_REPEAT},
	{"force", 'F', NULL, "", CLI_K_NONE, NULL, CLI_OPT_HIDDEN},
	CLI_OPT_END,
};
static const struct cli_cmd t_stop = {.name = "stop",
				      .args = "NAME LABEL...",
				      .opts = t_opts,
				      .min_args = 2,
				      .max_args = 3,
				      .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
				      .flags = CLI_CHECK_ARGS};

static int parse(const struct cli_cmd *c, int argc, char **argv, struct cli_args *a,
		 struct clbsd_err *err)
{
	clbsd_err_init(err);
	return cli_args_parse(c, argc, argv, a, err);
}

TEST(options_anywhere)
{
	char *argv[] = {"stop", "web", "-t", "1", "x", "-fe", "A=1", "--env=B=2", "--timeout", "3"};
	struct cli_args a;
	struct clbsd_err err;
	CHECK_INT(parse(&t_stop, ARGC(argv), argv, &a, &err), 0);
	CHECK_INT(a.argc, 2);
	CHECK_STR(a.argv[0], "web");
	CHECK_STR(a.argv[1], "x");
	CHECK_STR(cli_get(&a, "time"), "3");
	CHECK(cli_has(&a, "force"));
	CHECK_STR(cli_get_nth(&a, "env", 0), "A=1");
	CHECK_STR(cli_get_nth(&a, "env", 1), "B=2");
	CHECK(cli_get_nth(&a, "env", 2) == NULL);
	cli_args_release(&a);

	/* "--" ends options; "-" alone is an argument. */
	char *argv2[] = {"stop", "web", "--", "-t", "-"};
	CHECK_INT(parse(&t_stop, ARGC(argv2), argv2, &a, &err), 0);
	CHECK_INT(a.argc, 3);
	CHECK_STR(a.argv[1], "-t");
	CHECK(!cli_has(&a, "time"));
	cli_args_release(&a);

	/* A hidden second spelling is the option. */
	char *argv4[] = {"stop", "web", "x", "-F"};
	CHECK_INT(parse(&t_stop, ARGC(argv4), argv4, &a, &err), 0);
	CHECK(cli_has(&a, "force"));
	cli_args_release(&a);

	/* -h anywhere asks for help. */
	char *argv3[] = {"stop", "web", "x", "-h"};
	CHECK_INT(parse(&t_stop, ARGC(argv3), argv3, &a, &err), 1);
	cli_args_release(&a);
}

/* Every usage error names the option or the argument. */
TEST(usage_errors)
{
	struct cli_args a;
	struct clbsd_err err;
	char *v1[] = {"stop", "web", "x", "--frob"};
	CHECK(parse(&t_stop, ARGC(v1), v1, &a, &err) < 0);
	CHECK_STR(err.msg, "unknown option '--frob'");
	cli_args_release(&a);
	char *v2[] = {"stop", "web", "x", "-fz"};
	CHECK(parse(&t_stop, ARGC(v2), v2, &a, &err) < 0);
	CHECK_STR(err.msg, "unknown option '-z'");
	cli_args_release(&a);
	char *v3[] = {"stop", "web", "x", "-t"};
	CHECK(parse(&t_stop, ARGC(v3), v3, &a, &err) < 0);
	CHECK_STR(err.msg, "option '-t' needs a value");
	cli_args_release(&a);
	char *v4[] = {"stop", "web", "x", "--force=yes"};
	CHECK(parse(&t_stop, ARGC(v4), v4, &a, &err) < 0);
	CHECK_STR(err.msg, "option '--force' takes no value");
	cli_args_release(&a);
	char *v5[] = {"stop"};
	CHECK(parse(&t_stop, ARGC(v5), v5, &a, &err) < 0);
	CHECK_STR(err.msg, "missing NAME and LABEL");
	CHECK(err.kind == CLBSD_E_INVALID);
	cli_args_release(&a);
	char *v6[] = {"stop", "web", "a", "b", "c"};
	CHECK(parse(&t_stop, ARGC(v6), v6, &a, &err) < 0);
	CHECK_STR(err.msg, "unexpected argument \"c\"");
	cli_args_release(&a);
	char *v7[] = {"stop", "../web", "a"};
	CHECK(parse(&t_stop, ARGC(v7), v7, &a, &err) < 0);
	CHECK(strstr(err.msg, "invalid container name \"../web\"") != NULL);
	cli_args_release(&a);
}

/* run and exec: what follows IMAGE / NAME belongs to the container's command. */
TEST(stop_at_command)
{
	char *argv[] = {"exec", "-e", "A=1", "web", "sh", "-c", "--help", "-t"};
	struct exec_opts o;
	struct clbsd_err err;
	CHECK_INT(cli_parse_exec(ARGC(argv), argv, &o, &err), 0);
	autofree char *s = dump(json_object_get(o.req, "command"));
	CHECK_STR(s, "[\"sh\",\"-c\",\"--help\",\"-t\"]");
	CHECK(!o.tty);
	exec_opts_release(&o);
}

/* A --format over items with their computed fields. */
static char *render(const char *fmt, const char *items_json, const char *extras_json,
		    struct clbsd_err *err)
{
	json_t *items = json_loads(items_json, 0, NULL);
	json_t *extras = json_loads(extras_json, 0, NULL);
	struct tmpl *t = NULL;
	char *out = NULL;
	clbsd_err_init(err);
	if (tmpl_parse(fmt, &t, err) == 0 && tmpl_check(t, items, extras, err) == 0) {
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < json_array_size(items); i++) {
			tmpl_render(t, json_array_get(items, i), json_array_get(extras, i), &b);
			buf_addc(&b, '|');
		}
		out = buf_detach(&b, NULL);
	}
	tmpl_free(t);
	json_decref(items);
	json_decref(extras);
	return out;
}

TEST(format_templates)
{
	const char *items = "[{\"name\":\"web\",\"state\":\"running\",\"exit_code\":0,"
			    "\"config\":{\"hostname\":\"w\",\"env\":[\"A=1\"]},\"pid\":7},"
			    "{\"name\":\"db\",\"state\":\"exited\",\"exit_code\":3,"
			    "\"config\":{\"hostname\":null,\"env\":[]},\"pid\":0}]";
	const char *extras = "[{\"Status\":\"Up 5 minutes\",\"ID\":\"abc\"},"
			     "{\"Status\":\"Exited (3)\",\"ID\":\"def\"}]";
	struct clbsd_err err;
	autofree char *a = render("{{.Name}}\\t{{.State}} {{ .ExitCode }}", items, extras, &err);
	CHECK_STR(a, "web\trunning 0|db\texited 3|");
	autofree char *b = render("{{.ID}}:{{.Status}}", items, extras, &err);
	CHECK_STR(b, "abc:Up 5 minutes|def:Exited (3)|");
	autofree char *c =
		render("{{.Config.Hostname}}/{{json .Config.Env}}/{{.pid}}", items, extras, &err);
	CHECK_STR(c, "w/[\"A=1\"]/7|/[]/0|");
	autofree char *d = render("{{json .Name}} {{upper .State}}", items, extras, &err);
	CHECK_STR(d, "\"web\" RUNNING|\"db\" EXITED|");
	autofree char *e = render("{{json .}}", "[{\"a\":1}]", "[{\"X\":2}]", &err);
	CHECK_STR(e, "{\"a\":1}|");
	/* Errors name what is wrong. */
	CHECK(render("{{.Nmae}}", items, extras, &err) == NULL);
	CHECK(strstr(err.msg, ".Nmae") && strstr(err.msg, "unknown field"));
	CHECK(render("{{.Config.Nope}}", items, extras, &err) == NULL);
	CHECK(strstr(err.msg, ".Config.Nope") != NULL);
	CHECK(render("{{.Name", items, extras, &err) == NULL);
	CHECK(render("{{range .Names}}", items, extras, &err) == NULL);
	CHECK(strstr(err.msg, "range") != NULL);
	CHECK(render("{{Name}}", items, extras, &err) == NULL);

	struct tmpl *t;
	CHECK_INT(tmpl_parse("table {{.Name}}\\t{{.RunningFor}}", &t, &err), 0);
	CHECK(tmpl_is_table(t));
	autofree char *h = tmpl_header(t);
	CHECK_STR(h, "NAME\tRUNNING FOR");
	tmpl_free(t);
}

/* The computed fields ps --format adds to a container's JSON. */
TEST(ps_fields)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:[s,s], s:[{s:s}]}, s:{s:s, "
			      "s:[{s:s, s:s}, {s:s, s:s}], s:[s]}}",
			      "name", "web", "id", "0123456789abcdef", "image", "forge:latest",
			      "state", "running", "pid", 42, "config", "command", "httpd", "-f",
			      "volumes", "source", "data", "network", "mode", "networks",
			      "networks", "name", "bridge", "ip", "10.88.0.2", "name", "back", "ip",
			      "10.9.0.3", "publish", "0.0.0.0:8080:80/tcp");
	json_t *f = fmt_ps_fields(c, NOW, false);
	autofree char *s = dump(f);
	CHECK_STR(s, "{\"Address\":\"10.88.0.2,10.9.0.3\",\"Command\":\"\\\"httpd -f\\\"\","
		     "\"CreatedAt\":\"\",\"ID\":\"0123456789ab\",\"Image\":\"forge:latest\","
		     "\"Kind\":\"native\",\"Mounts\":\"data\",\"Name\":\"web\",\"Names\":\"web\","
		     "\"Networks\":\"bridge,back\",\"PID\":42,\"Ports\":\"0.0.0.0:8080->80/tcp\","
		     "\"RunningFor\":\"\",\"State\":\"running\",\"Status\":\"Up\"}");
	json_decref(f);
	f = fmt_ps_fields(c, NOW, true);
	CHECK_STR(json_string_value(json_object_get(f, "ID")), "0123456789abcdef");
	json_decref(f);
	json_decref(c);
}

TEST(log_times)
{
	char t[48];
	struct clbsd_err err;
	int64_t now = 1764000000LL * 1000000000LL;
	CHECK_INT(cli_log_time("since", "2026-11-22T20:07:46Z", now, t, sizeof(t), &err), 0);
	CHECK_STR(t, "2026-11-22T20:07:46.000000000Z");
	CHECK_INT(cli_log_time("since", "10m", now, t, sizeof(t), &err), 0);
	char want[48];
	time_fmt_rfc3339(now - 600LL * 1000000000LL, want, sizeof(want));
	CHECK_STR(t, want);
	CHECK_INT(cli_log_time("until", "1764000000", now, t, sizeof(t), &err), 0);
	time_fmt_rfc3339(now, want, sizeof(want));
	CHECK_STR(t, want);
	CHECK(cli_log_time("until", "yesterday", now, t, sizeof(t), &err) < 0);
	CHECK(strstr(err.msg, "--until \"yesterday\"") != NULL);
}

TEST_MAIN_BEGIN("cli")
RUN(run_minimal);
RUN(run_all_flags);
RUN(run_stops_at_image);
RUN(run_double_dash);
RUN(run_help);
RUN(run_rejects);
RUN(run_integrity_paths);
RUN(env_bare_key);
RUN(run_missing);
RUN(restart_policies);
RUN(users);
RUN(exec_parse);
RUN(durations);
RUN(sizes);
RUN(short_ids_and_commands);
RUN(status_column);
RUN(table_alignment);
RUN(ps_table);
RUN(ps_moved_rows);
RUN(images_table);
RUN(stats_table);
RUN(event_lines);
RUN(audit_lines_escape_control_bytes);
RUN(info_text);
RUN(cri_lines);
RUN(log_writer);
RUN(named_volume);
RUN(stop_signal);
RUN(options_anywhere);
RUN(usage_errors);
RUN(stop_at_command);
RUN(format_templates);
RUN(ps_fields);
RUN(log_times);
TEST_MAIN_END
