/*
 * The audit log's writer (docs/audit.md): <root>/audit/audit.log, JSON lines,
 * append-only, rotated by size, written by a thread of its own so the loop
 * never waits for the disk.
 *
 * Invariants:
 * - audit_log_append() is called on the loop thread only and never blocks
 *   on I/O: it encodes the record and puts it in a bounded ring
 *   (AUDIT_RING records). The writer thread takes records from the ring in
 *   order, appends them (O_APPEND, mode 0600), rotates before a record
 *   would take the file past its size, and fdatasync()s after each batch
 *   when the policy says so.
 * - Nothing is lost silently: a record that finds the ring full is counted,
 *   and so is a record the writer could not write; the count goes into an
 *   "audit.lost" record as soon as there is room (or the disk works again).
 * - The ring keeps the last AUDIT_RING records after they are written, so a
 *   reader that read the files finds there whatever was queued but not yet
 *   on disk (audit_log_ring): records have a sequence number (seq) that grows
 *   by one per record, across daemon restarts.
 */
#ifndef CLBSD_DAEMON_AUDIT_LOG_H
#define CLBSD_DAEMON_AUDIT_LOG_H

#include <clbsd/error.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef AUDIT_RING /* a test may make it small */
#define AUDIT_RING 4096
#endif

struct audit_log;

struct audit_settings {
	int64_t max_size; /* bytes per file before it rotates */
	int keep;	  /* rotated files kept: audit.log.1 .. audit.log.<keep> */
	bool fsync;	  /* fdatasync after each batch (default) */
};

/* Open (creating <dir> 0700 and the file 0600) and start the writer. */
int audit_log_open(const char *dir, const struct audit_settings *set, struct audit_log **out,
		   struct clbsd_err *err);
/* Write what is queued, stop the writer, free. NULL is fine. */
void audit_log_close(struct audit_log *log);
/* New settings, in force from the next record written. */
void audit_log_configure(struct audit_log *log, const struct audit_settings *set);

/*
 * Queue a record: fields (borrowed) after "time" and "seq"; time_ns 0 is
 * now. Loop thread only; never blocks on the disk. NULL log: nothing.
 */
void audit_log_append(struct audit_log *log, int64_t time_ns, const json_t *fields);

/* The path of the newest file and the number of rotated files kept. */
const char *audit_log_path(const struct audit_log *log);
int audit_log_keep(const struct audit_log *log);
/* The seq of the last record queued (0: none yet). */
uint64_t audit_log_last_seq(struct audit_log *log);
/*
 * Call fn with each record still in the ring whose seq is in (after, upto],
 * in order. Returns the seq of the oldest record the ring holds (so a
 * caller can tell records it missed), or 0 when it is empty.
 */
uint64_t audit_log_ring(struct audit_log *log, uint64_t after, uint64_t upto,
			void (*fn)(const char *line, uint64_t seq, void *arg), void *arg);
/*
 * The seq of the last record of the file path, however long the lines
 * after it (0: none, or no such file). Blocks on the disk.
 */
uint64_t audit_last_seq_of(const char *path);
/* Wait until everything queued so far is written (tests, shutdown). */
void audit_log_flush(struct audit_log *log);

#endif
