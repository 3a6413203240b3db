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
 * - A probe site is a single nop in the code and a note in .note.stapsdt;
 *   its arguments are computed only as cheaply as they are written (pass
 *   values already at hand: a name, a code, a duration the site keeps).
 * - Strings are passed as pointers (read them with str() in bpftrace,
 *   copyinstr() in DTrace) and must stay valid for the call only.
 * - Durations are int64 nanoseconds of the monotonic clock.
 * - Without <sys/sdt.h> (Debian: systemtap-sdt-dev), or built with
 *   -DCLBSD_NO_TRACE, the macros compile to nothing and their arguments
 *   are not evaluated.
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
/* sizeof keeps the arguments "used" (no warnings) without evaluating them. */
#define TRACE0(name)		       ((void)0)
#define TRACE1(name, a)		       ((void)sizeof(a))
#define TRACE2(name, a, b)	       ((void)sizeof(a), (void)sizeof(b))
#define TRACE3(name, a, b, c)	       ((void)sizeof(a), (void)sizeof(b), (void)sizeof(c))
#define TRACE4(name, a, b, c, d)       (TRACE3(name, a, b, c), (void)sizeof(d))
#define TRACE5(name, a, b, c, d, e)    (TRACE4(name, a, b, c, d), (void)sizeof(e))
#define TRACE6(name, a, b, c, d, e, f) (TRACE5(name, a, b, c, d, e), (void)sizeof(f))
#endif

#endif
