/*
 * Static tracing probes (USDT on Linux, DTrace's on FreeBSD): one macro per
 * argument count over <sys/sdt.h>, all in provider `clbsd`.
 *
 *	TRACE2(container__start, c->name, ns);
 *
 * names the probe clbsd:container__start (DTrace shows it as
 * clbsd:::container-start). docs/tracing.md lists every probe, its
 * arguments and how to attach to it; tests/integration/tracing.sh fails
 * when the binary and that list disagree, and src/util/clbsd_provider.d
 * declares the same probes for FreeBSD's `dtrace -G`.
 *
 * Invariants:
 * - A probe site is a single nop in the code and a note in .note.stapsdt.
 *   There are no semaphores: the arguments are computed whether or not
 *   anyone traces, so pass values already at hand (a name, a code, a time
 *   stamp the site keeps) and nothing that allocates or takes a lock. The
 *   cost, measured in docs/tracing.md, is a few ns per site.
 * - Strings are passed as pointers (read them with str() in bpftrace,
 *   copyinstr() in DTrace) and must stay valid for the call only.
 * - Durations are int64 nanoseconds of the monotonic clock.
 * - Without <sys/sdt.h> (Debian: systemtap-sdt-dev), or built with
 *   -DCLBSD_NO_TRACE, the macros compile to nothing and their arguments
 *   are not evaluated.
 * - A site is a statement (TRACEn(...);), never an expression.
 */
#ifndef CLBSD_TRACE_H
#define CLBSD_TRACE_H

#if !defined(CLBSD_NO_TRACE) && defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define CLBSD_TRACE 1
#endif
#endif

#ifdef CLBSD_TRACE
#define TRACE0(name)		       DTRACE_PROBE(clbsd, name)
#define TRACE1(name, a)		       DTRACE_PROBE1(clbsd, name, a)
#define TRACE2(name, a, b)	       DTRACE_PROBE2(clbsd, name, a, b)
#define TRACE3(name, a, b, c)	       DTRACE_PROBE3(clbsd, name, a, b, c)
#define TRACE4(name, a, b, c, d)       DTRACE_PROBE4(clbsd, name, a, b, c, d)
#define TRACE5(name, a, b, c, d, e)    DTRACE_PROBE5(clbsd, name, a, b, c, d, e)
#define TRACE6(name, a, b, c, d, e, f) DTRACE_PROBE6(clbsd, name, a, b, c, d, e, f)
#else
/*
 * Dead code keeps the arguments "used" (no unused-variable or -function
 * warnings) without evaluating them; the compiler drops it.
 */
#define TRACE0(name)                                                                               \
	do {                                                                                       \
	} while (0)
#define TRACE1(name, a)                                                                            \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a);                                                                 \
		}                                                                                  \
	} while (0)
#define TRACE2(name, a, b)                                                                         \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a), (void)(b);                                                      \
		}                                                                                  \
	} while (0)
#define TRACE3(name, a, b, c)                                                                      \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a), (void)(b), (void)(c);                                           \
		}                                                                                  \
	} while (0)
#define TRACE4(name, a, b, c, d)                                                                   \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a), (void)(b), (void)(c), (void)(d);                                \
		}                                                                                  \
	} while (0)
#define TRACE5(name, a, b, c, d, e)                                                                \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a), (void)(b), (void)(c), (void)(d), (void)(e);                     \
		}                                                                                  \
	} while (0)
#define TRACE6(name, a, b, c, d, e, f)                                                             \
	do {                                                                                       \
		if (0) {                                                                           \
			(void)(a), (void)(b), (void)(c), (void)(d), (void)(e), (void)(f);          \
		}                                                                                  \
	} while (0)
#endif

#endif
