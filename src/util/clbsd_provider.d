/*
 * The clbsd USDT provider for DTrace (FreeBSD, illumos, macOS): the probes
 * src/util/trace.h's TRACEn() macros fire, with their argument types. On
 * Linux <sys/sdt.h> needs no such file; a FreeBSD build runs
 *
 *	dtrace -h -s src/util/clbsd_provider.d -o build/clbsd_provider.h
 *	dtrace -G -s src/util/clbsd_provider.d -o build/clbsd_provider.o OBJS...
 *
 * and links build/clbsd_provider.o into clbsdd. A double underscore in a
 * name is a dash to dtrace(1): clbsd:::container-start.
 * tests/integration/tracing.sh checks that this list, docs/tracing.md and
 * the probes in clbsdd's ELF notes agree.
 */
provider clbsd {
	/* container life cycle: name first; durations in nanoseconds */
	probe container__create(char *name, char *kind, int64_t duration_ns, char *how);
	probe container__start(char *name, int pid, int64_t duration_ns);
	probe container__exec(char *name, char *argv0);
	probe container__exec__done(char *name, char *argv0, int code, int64_t duration_ns);
	probe container__exit(char *name, int code, int signal, int64_t ran_ns);
	probe container__oom(char *name);
	probe container__remove(char *name, int64_t duration_ns);

	/* the reconciler */
	probe reconcile__pass__start(uint64_t pass, uint64_t actions);
	probe reconcile__pass__end(uint64_t pass, uint64_t actions, uint64_t failures,
				   int64_t duration_ns);
	probe reconcile__action__start(uint64_t pass, char *kind, char *name);
	probe reconcile__action__done(uint64_t pass, char *kind, char *name, char *result,
				      int64_t duration_ns, char *error);

	/* hooks, health checks, ingress */
	probe hook__start(char *name, char *event, char *command);
	probe hook__done(char *name, char *event, int code, char *result, int64_t duration_ns,
			 char *command);
	probe health__check(char *name, char *result, int code, int64_t duration_ns,
			    char *status);
	probe ingress__reload(int routes, char *result, int64_t duration_ns, char *error);

	/* the HTTP/JSON API */
	probe api__request__start(char *method, char *path);
	probe api__request__done(char *method, char *path, int status, int64_t duration_ns);
};
