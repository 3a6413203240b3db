/*
 * The reconciler's planner: a pure function from what the configuration
 * wants (desired) and what exists (observed) to an ordered list of actions.
 * It does no I/O and keeps no state, so it is tested exhaustively and
 * `clbsd plan` shows exactly what `apply` will do.
 *
 * Rules (DESIGN.md, "Reconciliation"):
 * - A declared container that does not exist is created (and started when
 *   its desired state is running).
 * - One whose recorded spec hash differs from the desired hash is
 *   recreated; the reason names the changed keys the caller found. When
 *   only its live part (:limits) differs (the recorded hash equals the
 *   desired one's update_hash) it is updated in place instead, and then
 *   started or stopped as for an unchanged one.
 * - A declared container that is stopped but should run is started; one that
 *   runs but should be stopped is stopped.
 * - A managed container (created by the reconciler) that is no longer
 *   declared is stopped and removed. Unmanaged containers (clbsd run) are
 *   never touched; a declared name taken by one is reported as a conflict.
 * - Starts (and creates, recreates) follow :depends-on, dependencies first;
 *   stops and removals go in the reverse order, dependants first.
 * - A dependency that is unknown or part of a cycle is refused with an error
 *   naming it (the config layer reports these first; the planner checks too).
 *
 * Invariant: the returned actions reference names from the inputs; the
 * caller keeps the inputs alive while it uses them.
 */
#ifndef CLBSD_PLAN_H
#define CLBSD_PLAN_H

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>

struct plan_desired {
	const char *name;
	const char *hash;	 /* normalised spec hash */
	bool running;		 /* :state running (else stopped) */
	const char *const *deps; /* :depends-on */
	size_t n_deps;
	const char *changed; /* for a recreate: "changed keys" text, e.g. ":env, :image" */
	/*
	 * The desired hash with the existing container's live part in place
	 * of the declared one (ctr_spec_hash_live()); NULL when the container
	 * cannot be updated in place (none exists, or of a kind that cannot).
	 */
	const char *update_hash;
};

struct plan_observed {
	const char *name;
	const char *hash; /* spec hash recorded at creation; NULL when unknown */
	bool managed;	  /* created by the reconciler */
	bool running;	  /* running, starting or restarting */
};

enum plan_op {
	PLAN_STOP,     /* stop a container that should not run */
	PLAN_REMOVE,   /* stop (if running) and remove an undeclared managed one */
	PLAN_RECREATE, /* remove and create again (then start if desired) */
	PLAN_CREATE,   /* create (then start if desired) */
	PLAN_START,    /* start an existing, stopped one */
	PLAN_CONFLICT, /* declared, but an unmanaged container has the name: touch nothing */
	PLAN_UPDATE,   /* write the live part (:limits) of an existing one in place */
};

struct plan_action {
	enum plan_op op;
	const char *name;
	bool start;   /* CREATE/RECREATE: start afterwards */
	char *reason; /* "recreate web: :env changed" */
};

struct plan {
	struct plan_action *actions;
	size_t n;
};

/*
 * Compute the plan. Stops and removals come first (dependants before their
 * dependencies), then creates, recreates and starts (dependencies first).
 * Fails (CLBSD_E_INVALID) on an unknown dependency or a cycle, naming it.
 */
int plan_compute(const struct plan_desired *want, size_t n_want, const struct plan_observed *have,
		 size_t n_have, struct plan *out, struct clbsd_err *err);
void plan_release(struct plan *p);
const char *plan_op_name(enum plan_op op);

/*
 * The declared containers in dependency order (dependencies first), as
 * indexes into want. Used for boot order too. Fails like plan_compute.
 */
int plan_order(const struct plan_desired *want, size_t n_want, size_t **order,
	       struct clbsd_err *err);

#endif
