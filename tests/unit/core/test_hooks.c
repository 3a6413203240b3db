#include "core/hook_actor.h"
#include "test.h"
#include "util/util.h"

#include <event2/event.h>

struct got {
	int calls;
	struct hook_result r;
	char out[256];
};

static void done(const struct hook_result *r, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->r = *r;
	snprintf(g->out, sizeof(g->out), "%.*s", (int)r->output_len, r->output);
	g->r.output = NULL;
}

static int run(char *const argv[], char *const env[], int64_t timeout_ns, struct got *g)
{
	struct event_base *base = event_base_new();
	struct clbsd_err err;
	int r = hook_run(base, argv, env, timeout_ns, done, g, &err);
	if (r == 0)
		event_base_dispatch(base);
	event_base_free(base);
	return r;
}

TEST(shell_hook_with_env_and_status)
{
	struct got g = {0};
	char *argv[] = {"/bin/sh", "-c",
			"echo \"$CLBSD_CONTAINER/$CLBSD_EVENT\"; echo err >&2; exit 3", NULL};
	char *env[] = {"CLBSD_CONTAINER=web", "CLBSD_EVENT=container.exited", NULL};
	CHECK_INT(run(argv, env, 5000000000LL, &g), 0);
	CHECK_INT(g.calls, 1);
	CHECK_INT(g.r.exit_code, 3);
	CHECK(!g.r.timed_out);
	CHECK_STR(g.out, "web/container.exited\nerr\n");
}

TEST(argv_hook_is_not_a_shell)
{
	struct got g = {0};
	char *argv[] = {"echo", "$HOME;", "x", NULL};
	CHECK_INT(run(argv, NULL, 0, &g), 0);
	CHECK_STR(g.out, "$HOME; x\n");
	CHECK_INT(g.r.exit_code, 0);
}

TEST(timeout_kills_the_group)
{
	struct got g = {0};
	/* The child sleep keeps the pipe open: only killing the group ends it. */
	char *argv[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	int64_t t0 = time_mono_ns();
	CHECK_INT(run(argv, NULL, 200000000LL, &g), 0);
	int64_t ms = (time_mono_ns() - t0) / 1000000;
	CHECK_INT(g.calls, 1);
	CHECK(g.r.timed_out);
	CHECK_INT(g.r.exit_code, 137);
	CHECK(ms < 5000);
}

TEST(missing_command_127)
{
	struct got g = {0};
	char *argv[] = {"/nonexistent/hook", NULL};
	CHECK_INT(run(argv, NULL, 0, &g), 0);
	CHECK_INT(g.r.exit_code, 127);
	CHECK(strstr(g.out, "/nonexistent/hook") != NULL);
}

TEST(output_is_bounded)
{
	struct got g = {0};
	char *argv[] = {"/bin/sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x", NULL};
	CHECK_INT(run(argv, NULL, 0, &g), 0);
	CHECK(g.r.truncated);
	CHECK_INT(g.r.output_len, HOOK_OUTPUT_MAX);
}

/* ---- actors ---- */

static char trace[64];
static struct actor *pending_actor;

static void job_now(struct actor *a, void *arg)
{
	strcat(trace, arg);
	actor_done(a);
}

static void job_later(struct actor *a, void *arg)
{
	strcat(trace, arg);
	pending_actor = a; /* finishes when the test says so */
}

TEST(actor_runs_jobs_in_order_one_at_a_time)
{
	trace[0] = '\0';
	struct actor *a = actor_new("web");
	actor_post(a, job_now, "1");
	actor_post(a, job_later, "2");
	actor_post(a, job_now, "3");
	actor_post(a, job_now, "4");
	CHECK_STR(trace, "12");
	CHECK(actor_busy(a));
	CHECK_INT(actor_pending(a), 2);
	actor_done(pending_actor);
	CHECK_STR(trace, "1234");
	CHECK(!actor_busy(a));
	actor_free(a);
}

TEST(actors_are_independent)
{
	trace[0] = '\0';
	struct actor *a = actor_new("slow");
	struct actor *b = actor_new("fast");
	actor_post(a, job_later, "a");
	actor_post(a, job_now, "A");
	actor_post(b, job_now, "b");
	CHECK_STR(trace, "ab");
	actor_done(a);
	CHECK_STR(trace, "abA");
	actor_free(a);
	actor_free(b);
}

TEST_MAIN_BEGIN("hooks")
RUN(shell_hook_with_env_and_status);
RUN(argv_hook_is_not_a_shell);
RUN(timeout_kills_the_group);
RUN(missing_command_127);
RUN(output_is_bounded);
RUN(actor_runs_jobs_in_order_one_at_a_time);
RUN(actors_are_independent);
TEST_MAIN_END
