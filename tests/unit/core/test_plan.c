#include "core/plan.h"
#include "test.h"
#include "util/util.h"

/* The plan as "op name[+start]" words, for compact assertions. */
static char *render(const struct plan *p)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < p->n; i++)
		buf_addf(&b, "%s%s %s%s", i ? ", " : "", plan_op_name(p->actions[i].op),
			 p->actions[i].name, p->actions[i].start ? "+start" : "");
	return buf_detach(&b, NULL);
}

static const char *const none[] = {NULL};
static const char *const on_db[] = {"db"};
static const char *const on_web[] = {"web"};
static const char *const on_app[] = {"app"};

TEST(creates_in_dependency_order)
{
	struct plan_desired want[] = {
		{"web", "h1", true, on_db, 1, NULL, NULL},
		{"db", "h2", true, none, 0, NULL, NULL},
		{"proxy", "h3", true, on_web, 1, NULL, NULL},
	};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 3, NULL, 0, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "create db+start, create web+start, create proxy+start");
	CHECK_STR(p.actions[0].reason, "create db: declared, does not exist");
	free(s);
	plan_release(&p);
}

TEST(noop_when_converged)
{
	struct plan_desired want[] = {{"web", "h1", true, none, 0, NULL, NULL}};
	struct plan_observed have[] = {{"web", "h1", true, true}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	CHECK_INT(p.n, 0);
	plan_release(&p);
}

TEST(recreate_on_hash_change_with_reason)
{
	struct plan_desired want[] = {
		{"web", "new", true, none, 0, ":env", NULL},
		{"db", "h2", true, none, 0, NULL, NULL},
	};
	struct plan_observed have[] = {{"web", "old", true, true}, {"db", "h2", true, true}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 2, have, 2, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "recreate web+start");
	CHECK_STR(p.actions[0].reason, "recreate web: :env changed");
	free(s);
	plan_release(&p);
}

TEST(start_and_stop_follow_state)
{
	struct plan_desired want[] = {
		{"db", "h2", false, none, 0, NULL, NULL},
		{"web", "h1", true, none, 0, NULL, NULL},
	};
	struct plan_observed have[] = {{"db", "h2", true, true}, {"web", "h1", true, false}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 2, have, 2, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "stop db, start web+start");
	free(s);
	plan_release(&p);
}

TEST(removes_undeclared_managed_only)
{
	struct plan_desired want[] = {{"web", "h1", true, none, 0, NULL, NULL}};
	struct plan_observed have[] = {
		{"web", "h1", true, true},
		{"old", "h9", true, true},
		{"adhoc", NULL, false, true}, /* clbsd run: never touched */
	};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 1, have, 3, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "remove old");
	free(s);
	plan_release(&p);
}

TEST(unmanaged_name_is_a_conflict)
{
	struct plan_desired want[] = {{"web", "h1", true, none, 0, NULL, NULL}};
	struct plan_observed have[] = {{"web", NULL, false, true}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "conflict web");
	free(s);
	plan_release(&p);
}

TEST(stops_dependants_first)
{
	struct plan_desired want[] = {
		{"db", "h2", false, none, 0, NULL, NULL},
		{"app", "h3", false, on_db, 1, NULL, NULL},
		{"web", "h1", false, on_app, 1, NULL, NULL},
	};
	struct plan_observed have[] = {
		{"db", "h2", true, true}, {"app", "h3", true, true}, {"web", "h1", true, true}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 3, have, 3, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "stop web, stop app, stop db");
	free(s);
	plan_release(&p);
}

TEST(cycle_is_named)
{
	struct plan_desired want[] = {
		{"web", "h1", true, on_db, 1, NULL, NULL},
		{"db", "h2", true, on_web, 1, NULL, NULL},
	};
	struct plan p;
	struct clbsd_err err;
	CHECK(plan_compute(want, 2, NULL, 0, &p, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK_STR(err.msg, ":depends-on has a cycle: web -> db -> web");
}

TEST(unknown_dependency_is_named)
{
	struct plan_desired want[] = {{"web", "h1", true, on_db, 1, NULL, NULL}};
	struct plan p;
	struct clbsd_err err;
	CHECK(plan_compute(want, 1, NULL, 0, &p, &err) < 0);
	CHECK(strstr(err.msg, "web") && strstr(err.msg, "db"));
}

TEST(order_keeps_file_order_for_independent)
{
	struct plan_desired want[] = {
		{"c", "1", true, none, 0, NULL, NULL},
		{"a", "2", true, none, 0, NULL, NULL},
		{"b", "3", true, none, 0, NULL, NULL},
	};
	size_t *order;
	struct clbsd_err err;
	CHECK_INT(plan_order(want, 3, &order, &err), 0);
	CHECK_INT(order[0], 0);
	CHECK_INT(order[1], 1);
	CHECK_INT(order[2], 2);
	free(order);
}

/* Only :limits changed (update_hash matches): written in place, not recreated. */
TEST(update_in_place_when_only_limits_changed)
{
	struct plan_desired want[] = {{"web", "new", true, none, 0, ":limits", "old"}};
	struct plan_observed have[] = {{"web", "old", true, true}};
	struct plan p;
	struct clbsd_err err;
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	char *s = render(&p);
	CHECK_STR(s, "update web");
	CHECK_STR(p.actions[0].reason, "update web: :limits changed (in place)");
	free(s);
	plan_release(&p);
	/* Stopped, to run: updated, then started. */
	have[0].running = false;
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	s = render(&p);
	CHECK_STR(s, "update web, start web+start");
	free(s);
	plan_release(&p);
	/* Running, to stop: stopped, then updated. */
	have[0].running = true;
	want[0].running = false;
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	s = render(&p);
	CHECK_STR(s, "stop web, update web");
	free(s);
	plan_release(&p);
	/* Something else changed too: recreated. */
	want[0].running = true;
	want[0].update_hash = "other";
	CHECK_INT(plan_compute(want, 1, have, 1, &p, &err), 0);
	s = render(&p);
	CHECK_STR(s, "recreate web+start");
	free(s);
	plan_release(&p);
}

TEST_MAIN_BEGIN("plan")
RUN(creates_in_dependency_order);
RUN(noop_when_converged);
RUN(update_in_place_when_only_limits_changed);
RUN(recreate_on_hash_change_with_reason);
RUN(start_and_stop_follow_state);
RUN(removes_undeclared_managed_only);
RUN(unmanaged_name_is_a_conflict);
RUN(stops_dependants_first);
RUN(cycle_is_named);
RUN(unknown_dependency_is_named);
RUN(order_keeps_file_order_for_independent);
TEST_MAIN_END
