/*
 * The audit log's pure parts (docs/audit.md): how a record is encoded as one
 * JSON line, which rotated file comes before which, whether a record passes
 * a reader's filters, and what a Cblockfile's AUDITCFG classes ask for.
 *
 * Invariants:
 * - Pure: no file, no clock, no daemon. The writer (src/daemon/audit_log.c)
 *   and the API's reader (src/api/audit_route.c) do the effects.
 * - A record is one line: "time" (RFC 3339 UTC, milliseconds) and "seq"
 *   first, then the caller's fields in the order given. No string in it is
 *   longer than AUDIT_STR_MAX bytes nor a key longer than AUDIT_KEY_MAX
 *   (longer ones are cut on a UTF-8 boundary and end in "..."), and the
 *   whole line is at most AUDIT_REC_MAX bytes (what does not fit is cut or
 *   replaced by "..."), so a record stays small whatever a request carried,
 *   and JSON escaping keeps it on one line.
 * - Files: <dir>/audit.log is the newest; audit.log.1 the one before it, up
 *   to audit.log.<keep>, the oldest. Reading in order is keep..1, then 0.
 */
#ifndef CLBSD_CORE_AUDIT_REC_H
#define CLBSD_CORE_AUDIT_REC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_STR_MAX 1024
/* An object key in a record is cut to this many bytes. */
#define AUDIT_KEY_MAX 64
/*
 * A whole record (one line, without its newline) is at most this many
 * bytes: values past it are cut or replaced by "..." (docs/audit.md), so
 * the writer finds the last record of a file in a bounded read.
 */
#define AUDIT_REC_MAX (16 << 10)

/* Defaults of (host :audit ...) (docs/config.md). */
#define AUDIT_MAX_SIZE_DEFAULT (10LL << 20)
#define AUDIT_KEEP_DEFAULT     5
#define AUDIT_KEEP_MAX	       99

/*
 * The line of a record (no trailing newline; caller frees): time and seq,
 * then each member of fields (borrowed) with long strings cut.
 */
char *audit_rec_line(int64_t time_ns, uint64_t seq, const json_t *fields);

/* "2026-12-07T17:17:18.123Z" into buf (>= 32 bytes). */
void audit_time_text(int64_t ns, char *buf, size_t len);

/* The path of rotated file i of base (0: base itself); caller frees. */
char *audit_file_path(const char *base, int i);

/*
 * Does appending add bytes to a file of size bytes go past max? An empty
 * file never rotates (a record larger than max is still written, alone).
 */
bool audit_rotate_due(int64_t size, size_t add, int64_t max);

/*
 * Does the record rec pass a reader's filters: time at or after since_ns
 * (0: any), container equal to container (NULL: any)?
 */
bool audit_rec_wanted(const json_t *rec, int64_t since_ns, const char *container);

/*
 * AUDITCFG (docs/cblockfile.md): FreeBSD audit class names, comma-separated,
 * each optionally prefixed "+" (success only), "-" (failure only) or "^"
 * (excluded; "^+"/"^-" exclude one half). clbsd records what the classes
 * name whatever the result, so "+ex" and "-ex" both select exec and "^ex"
 * removes it again.
 */
enum audit_class {
	AUDIT_C_EX = 1 << 0,  /* exec: every exec into the container, with its argv */
	AUDIT_C_LO = 1 << 1,  /* login/logout: console and attach sessions */
	AUDIT_C_FR = 1 << 2,  /* file read */
	AUDIT_C_FW = 1 << 3,  /* file write */
	AUDIT_C_FC = 1 << 4,  /* file create */
	AUDIT_C_FD = 1 << 5,  /* file delete */
	AUDIT_C_FM = 1 << 6,  /* file attribute modify */
	AUDIT_C_FA = 1 << 7,  /* file attribute access */
	AUDIT_C_CL = 1 << 8,  /* file close */
	AUDIT_C_PC = 1 << 9,  /* process */
	AUDIT_C_NT = 1 << 10, /* network */
	AUDIT_C_IP = 1 << 11, /* IPC */
	AUDIT_C_AD = 1 << 12, /* administrative */
	AUDIT_C_AA = 1 << 13, /* authentication and authorization */
	AUDIT_C_OT = 1 << 14, /* other */
	AUDIT_C_IO = 1 << 15, /* ioctl */
	AUDIT_C_AP = 1 << 16, /* application */
};
/* The classes that modify files: what an integrity check can pin. */
#define AUDIT_C_FILES (AUDIT_C_FW | AUDIT_C_FC | AUDIT_C_FD | AUDIT_C_FM)

/*
 * Parse an AUDITCFG value into *mask ("all" selects every class). 0; 1 with
 * why naming the first class clbsd does not know (ignored, *mask holds the
 * rest); -1 with why filled for an empty item (*mask untouched).
 */
int audit_classes_parse(const char *s, unsigned *mask, char *why, size_t wlen);

/* The class names of mask, comma-separated in a fixed order; caller frees. */
char *audit_classes_text(unsigned mask);

#endif
