/*
 * Backups, the pure part (docs/backup.md): labels and their times, the
 * grandfather-father-son pruning of `:keep (:daily D :weekly W :monthly M)`,
 * the chains of full and incremental archives of a directory destination,
 * which backup a restore --at TIME takes, and the destinations' syntax.
 * Nothing here reads a clock or touches a file: the daemon (src/daemon/
 * backup.c) and the CLI pass times in, so the unit tests can run a
 * simulated year in microseconds.
 *
 * A backup is labelled BACKUP_PREFIX + its UTC time (YYYYmmdd-HHMMSS); only
 * labels of that form are ever pruned, whatever else is there stays.
 */
#ifndef CLBSD_CORE_BACKUP_PLAN_H
#define CLBSD_CORE_BACKUP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKUP_PREFIX "backup-"
/* "backup-YYYYmmdd-HHMMSS" and its NUL */
#define BACKUP_LABEL_MAX 32

/* How many of each tier to keep; 0: none of that tier. */
struct backup_keep {
	int daily, weekly, monthly;
};

/* The label of a backup taken at t (seconds since the epoch, UTC). */
void backup_label(int64_t t, char out[BACKUP_LABEL_MAX]);
/* The time a backup label names; false when it is not a backup's label. */
bool backup_label_time(const char *label, int64_t *t);

/*
 * Grandfather-father-son. Of `labels` (any order), the backups to keep:
 * walking them newest first, each tier keeps the newest backup of each
 * day (UTC) / ISO week / month until it has kept its count of them; a
 * backup any tier keeps stays, and the newest backup always stays (it is
 * the next incremental's base). Tiers count periods that HAVE a backup,
 * not calendar periods back from now: ten failed days do not prune the
 * last good week away. keep[i] is set for every label (true for the
 * labels that are not backups). Returns how many backups are to go.
 */
size_t backup_prune(const char *const *labels, size_t n, const struct backup_keep *k, bool *keep);

/*
 * The newest backup at or before `at` of `labels`; -1 when none is.
 * INT64_MAX: the newest.
 */
long backup_pick(const char *const *labels, size_t n, int64_t at);

/*
 * A directory destination's archives: each is full (base -1) or an
 * incremental whose base is another entry's index.
 */
struct backup_entry {
	const char *label;
	long base;
};
/*
 * The entries to keep in the directory: those `keep` says and every base
 * they need, transitively. needed[] gets one flag per entry. A chain whose
 * base is missing (index out of range) is left as it is.
 */
void backup_chain_needed(const struct backup_entry *e, size_t n, const bool *keep, bool *needed);
/* The chain to restore entry i: its full first, then each incremental; the count. */
size_t backup_chain(const struct backup_entry *e, size_t n, size_t i, size_t *out);
/* A directory destination starts a new full after this many incrementals. */
#define BACKUP_CHAIN_MAX 7

/*
 * Where backups go:
 *   ssh://[user@]host[:port][/path/to/socket]   clbsd on another host, over ssh
 *   unix:/path/to/socket                        another clbsd on this host
 *   /dir or file:///dir                         a directory of export files
 */
enum backup_dest_kind { BACKUP_DEST_DIR, BACKUP_DEST_UNIX, BACKUP_DEST_SSH };
struct backup_dest {
	enum backup_dest_kind kind;
	char *path; /* DIR: the directory; UNIX: the socket; SSH: the socket or NULL */
	char *host; /* SSH: [user@]host */
	char *port; /* SSH: the port or NULL */
};
/* Parse s; false with the reason in why (a phrase after "expected ...") when it is none. */
bool backup_dest_parse(const char *s, struct backup_dest *out, char *why, size_t whylen);
void backup_dest_release(struct backup_dest *d);
struct strv;
/*
 * The argv that runs `$CLBSD_REMOTE [--socket PATH] ARGS...` (clbsd by
 * default) at an ssh destination: one command line for the remote shell,
 * each word single-quoted; ssh -o BatchMode=yes, the options of opts
 * (NULL-terminated pairs such as "-o", "X=y", or NULL), -p PORT, `--`
 * before the host; $CLBSD_SSH_COMMAND, when set, run through `sh -c` in
 * ssh's place (as GIT_SSH_COMMAND is). Shared by backups, `host diff`.
 */
void backup_dest_ssh_argv(const struct backup_dest *d, const char *const *args,
			  const char *const *opts, struct strv *argv);

#endif
