/*
 * The declarative configuration: an s-expression reader (sexp_*), the
 * diagnostics list every user-input problem goes to (conf_diags_*), the
 * validated model of the forms (host, container, image, network), its
 * canonical printing, and the spec hash and diff the reconciler plans with.
 *
 * Invariants:
 * - Everything here is pure: no file is written, nothing is started. The
 *   only I/O is conf_load() reading the configuration files. (The one
 *   writer in src/conf is live.h, for the daemon-owned conf.d/90-live.conf.)
 * - (override NAME :key value ...) forms amend a container declared
 *   elsewhere; they are applied while building, so the model holds the
 *   effective values and conf_print() shows no override.
 * - A struct conf exists only when the whole configuration validated; on
 *   any error the caller gets diagnostics and no model, so the last good
 *   configuration stays in force.
 * - Positions are 1-based; columns count bytes, not characters.
 * - Sizes are bytes, durations nanoseconds, both int64_t; 0 means unset
 *   where the key has no default (documented per field).
 */
#ifndef CLBSD_CONF_H
#define CLBSD_CONF_H

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                              */
/* ------------------------------------------------------------------------ */

/* At most this many diagnostics are kept; the rest are only counted. */
#define CONF_DIAGS_MAX 50

/* One problem in the user's input. line == 0 when it has no position. */
struct conf_diag {
	char *file;
	int line, col;
	char *msg;
};

struct conf_diags {
	struct conf_diag *v;
	size_t n, cap;
	size_t dropped; /* diagnostics past CONF_DIAGS_MAX, counted only */
};

#define CONF_DIAGS_INIT                                                                            \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}
void conf_diags_init(struct conf_diags *d);
void conf_diags_release(struct conf_diags *d);
/* Record one problem (file may be NULL; line 0 means "no position"). */
void conf_diags_add(struct conf_diags *d, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Total problems seen, including the ones dropped past the cap. */
size_t conf_diags_count(const struct conf_diags *d);
/*
 * Every diagnostic as "FILE:LINE:COL: message\n" (or "FILE: message\n"
 * without a position), then "... and N more errors\n" when some were
 * dropped. Returns a new string ("" when there are none).
 */
char *conf_diags_format(const struct conf_diags *d);

/* ------------------------------------------------------------------------ */
/* S-expression reader                                                      */
/* ------------------------------------------------------------------------ */

/* Nesting deeper than this is refused, so a hostile file cannot exhaust the stack. */
#define SEXP_MAX_DEPTH 256
/* Inputs larger than this are refused. */
#define SEXP_MAX_INPUT (16u << 20)

enum sexp_type {
	SEXP_LIST,    /* ( ... ), possibly dotted: items + tail */
	SEXP_STRING,  /* "..." with escapes resolved; never contains NUL */
	SEXP_INT,     /* int64 */
	SEXP_FLOAT,   /* finite double */
	SEXP_SYMBOL,  /* web, t, nil, always */
	SEXP_KEYWORD, /* :image (str holds "image", without the colon) */
};

struct sexp {
	enum sexp_type type;
	const char *file; /* borrowed from the struct sexp_doc that holds the node */
	int line, col;
	char *str; /* STRING, SYMBOL, KEYWORD */
	size_t len;
	int64_t i;
	double f;
	struct sexp **items; /* LIST */
	size_t n;
	struct sexp *tail; /* LIST: the cdr after '.', NULL for a proper list */
};

/* The forms of one file. Nodes point at `file`, so they live as long as the doc. */
struct sexp_doc {
	char *file;
	struct sexp **forms;
	size_t n;
};

/*
 * Read every form of `text` (len bytes, need not be NUL-terminated).
 * `file` names the input in positions. Stops at the first syntax error,
 * which is added to `diags` with its position, and returns -EINVAL; on
 * success *out is a new document (free with sexp_doc_free()).
 */
int sexp_read(const char *file, const char *text, size_t len, struct sexp_doc **out,
	      struct conf_diags *diags);
void sexp_doc_free(struct sexp_doc *doc);
void sexp_free(struct sexp *x);

/*
 * Canonical one-line printing: single spaces, strings re-escaped, floats in
 * the shortest form that reads back to the same double (always with a '.'
 * or exponent so it reads back as a float). Reading the output gives an
 * equal value (sexp_equal()).
 */
void sexp_print_to(struct buf *b, const struct sexp *x);
char *sexp_print(const struct sexp *x);
/* Print a string literal with escapes. */
void sexp_print_string(struct buf *b, const char *s);
/* Print a name as a bare symbol when it reads back as that symbol, else as a string. */
void sexp_print_name(struct buf *b, const char *s);
/* Print a double so that it reads back as the same float. */
void sexp_print_float(struct buf *b, double f);
/* True when `s` printed bare reads back as a symbol with that name. */
bool sexp_symbol_safe(const char *s);
/* Structural equality, positions ignored. */
bool sexp_equal(const struct sexp *a, const struct sexp *b);
/* "string", "integer", "float", "symbol", "keyword", "list". */
const char *sexp_type_name(enum sexp_type t);
/* A short description of a value for messages: the symbol `foo`, the integer 3, a list. */
char *sexp_describe(const struct sexp *x);

/* ------------------------------------------------------------------------ */
/* Model                                                                    */
/* ------------------------------------------------------------------------ */

/* Where a value was declared; file is borrowed from struct conf. */
struct conf_pos {
	const char *file;
	int line, col;
};

/* An IPv4 prefix: addr in host byte order. */
struct conf_cidr {
	bool set;
	uint32_t addr;
	int prefix;
};

struct conf_kv {
	char *key, *value;
};

enum conf_kind { CONF_KIND_NATIVE, CONF_KIND_DOCKER };
enum conf_restart { CONF_RESTART_NO, CONF_RESTART_ALWAYS, CONF_RESTART_ON_FAILURE };
enum conf_state { CONF_STATE_RUNNING, CONF_STATE_STOPPED };
enum conf_netmode { CONF_NET_BRIDGE, CONF_NET_HOST, CONF_NET_NONE, CONF_NET_NAMED };
/* :userns: UNSET takes the host's default; AUTO is a private range of host ids. */
enum conf_userns { CONF_USERNS_UNSET, CONF_USERNS_HOST, CONF_USERNS_AUTO };

enum conf_vol_type { CONF_VOL_BIND, CONF_VOL_DATASET };
struct conf_volume {
	enum conf_vol_type type;
	char *source; /* BIND: clean absolute host path; DATASET: a name */
	char *path;   /* clean absolute path inside the container */
	bool ro;
	/* DATASET only; 0 / NULL = unset (the driver's default) */
	int64_t quota, reservation, recordsize;
	char *compression;
};

/* How a hook runs its command. */
enum conf_cmd_type {
	CONF_CMD_SHELL, /* a string: /bin/sh -c on the host; argv[0] is the string */
	CONF_CMD_ARGV,	/* a list of strings: argv on the host */
	CONF_CMD_EXEC,	/* (:exec "cmd" ...): argv inside the container */
};
struct conf_cmd {
	enum conf_cmd_type type;
	char **argv; /* NULL-terminated, at least one element */
};

enum conf_hook_event {
	CONF_HOOK_START,
	CONF_HOOK_EXIT,
	CONF_HOOK_OOM,
	CONF_HOOK_HEALTH,
	CONF_HOOK_FILE_CHANGE,
	CONF_HOOK_EVERY,
};
struct conf_hook {
	enum conf_hook_event event;
	struct conf_cmd cmd;
	char *path;	    /* FILE_CHANGE: clean absolute path in the container */
	bool recursive;	    /* FILE_CHANGE */
	int64_t every_ns;   /* EVERY, > 0 */
	int64_t timeout_ns; /* default 60s */
	struct conf_pos pos;
};
#define CONF_HOOK_TIMEOUT_DEFAULT (60LL * 1000000000LL)

enum conf_health_type { CONF_HEALTH_NONE, CONF_HEALTH_CMD, CONF_HEALTH_HTTP, CONF_HEALTH_TCP };
struct conf_health {
	enum conf_health_type type;
	char **cmd;	 /* CMD: argv inside the container */
	char *http_path; /* HTTP */
	int port;	 /* HTTP (defaults to the container's :port), TCP */
	int64_t interval_ns, timeout_ns, start_period_ns; /* 30s, 5s, 0s */
	int retries;					  /* 3 */
	bool restart_unhealthy;
};

/* Port publishing "[IP:]HOST:CTR[/tcp|/udp]". */
struct conf_publish {
	char *ip; /* NULL: all addresses */
	int host_port, ctr_port;
	bool udp;
};

struct conf_container {
	char *name;
	struct conf_pos pos; /* of the name */
	enum conf_kind kind; /* default native */
	char *image;	     /* required */
	char **command;	     /* NULL: the image's */
	struct conf_kv *env; /* sorted by key, keys unique */
	size_t nenv;
	char *workdir;	/* NULL: the image's */
	char *user;	/* NULL: the image's */
	char *hostname; /* default: the container's name */
	bool tty;
	struct conf_volume *volumes; /* in declaration order */
	size_t nvolumes;
	int64_t memory; /* bytes, 0 = unlimited */
	double cpus;	/* 0 = unlimited */
	int64_t pids;	/* 0 = unlimited */
	enum conf_restart restart;
	int restart_max;	      /* ON_FAILURE: 0 = no limit */
	char **depends_on;	      /* sorted, unique */
	struct conf_pos *depends_pos; /* position of each entry */
	struct conf_health health;
	struct conf_hook *hooks; /* in declaration order */
	size_t nhooks;
	enum conf_state state;
	/* Parsed and validated now, given effect by later issues. */
	char **domains;		   /* NULL: none */
	int port;		   /* 0: none */
	char *path;		   /* URL path, default "/" */
	enum conf_netmode netmode; /* default: bridge with a host :network, else none */
	bool netmode_given;
	char **networks; /* NAMED: the networks' names, in order */
	char *ip;
	char **aliases;
	char **dns;
	struct conf_publish *publish;
	size_t npublish;
	int64_t storage_quota, storage_reservation, storage_recordsize;
	char *storage_compression;
	int64_t snap_every_ns; /* 0: no scheduled snapshots */
	int snap_keep;
	bool snapshot_before_change;
	bool ingress_websocket;
	int64_t ingress_max_body; /* 0: nginx's default */
	char *tls_cert, *tls_key;
	enum conf_userns userns; /* UNSET: the host's :userns */
};

enum conf_storage_driver { CONF_STORAGE_DIR, CONF_STORAGE_ZFS };
struct conf_host {
	struct conf_pos pos;		 /* file NULL when no (host) form was given */
	enum conf_storage_driver driver; /* default dir */
	char *pool, *root;		 /* ZFS */
	char *dir_path;			 /* DIR; NULL: the daemon's --root */
	bool network_set;		 /* :network given: containers default to bridge */
	char *bridge;			 /* default "clbsd0" */
	struct conf_cidr subnet;	 /* default 10.88.0.0/24 */
	char *subnet6;			 /* IPv6 subnet ("fd00:88::/64", normalised) or NULL */
	char **listen;			 /* default ("0.0.0.0:80") */
	char **tls_listen;		 /* NULL: none */
	char *default_domain;
	char *tls_ca;			    /* NULL: no TLS; "auto"; or a clean absolute path */
	enum conf_userns userns;	    /* default for new containers (UNSET: host) */
	int64_t userns_start, userns_count; /* the id pool; 0: /etc/subuid or 100000000 up */
};

struct conf_image {
	char *name;
	struct conf_pos pos;
	char *build;	      /* directory, or NULL */
	char *file;	      /* with :build; default "Cblockfile" */
	struct conf_kv *args; /* sorted by key */
	size_t nargs;
	char *from; /* image reference, or NULL */
};

struct conf_network {
	char *name;
	struct conf_pos pos;
	struct conf_cidr subnet; /* unset: the daemon allocates one */
	char *subnet6;		 /* IPv6 subnet, normalised, or NULL */
	bool internal;
};

/* A validated configuration. Arrays of entries are sorted by name. */
struct conf {
	char **files; /* every file read, owning the strings positions point at */
	struct conf_host host;
	struct conf_network **networks;
	size_t nnetworks;
	struct conf_image **images;
	size_t nimages;
	struct conf_container **containers;
	size_t ncontainers;
};

/* One input to conf_build(): a file name for positions and its text. */
struct conf_source {
	const char *file;
	const char *text;
	size_t len;
};

/*
 * Read, validate and normalise a configuration made of `n` sources, in
 * order (duplicates name both positions, across sources). Collects every
 * problem (up to CONF_DIAGS_MAX) in `diags` and returns -EINVAL when there
 * was any; on success *out is a new configuration (conf_free()).
 */
int conf_build(const struct conf_source *srcs, size_t n, struct conf **out,
	       struct conf_diags *diags);

/*
 * Load `main_file`, then every `confd_dir/ *.conf` in lexical (byte) order.
 * A missing main file or directory counts as empty; any other read error
 * is a diagnostic. Either may be NULL (skipped). Returns 0 with a new
 * configuration in *out, or -EINVAL with the problems in `diags`.
 */
int conf_load(const char *main_file, const char *confd_dir, struct conf **out,
	      struct conf_diags *diags);

void conf_free(struct conf *c);

/*
 * Whether conf_load() reads a file of this name in conf.d: "*.conf", not
 * starting with '.'. Editors' temporary files (".#x.conf", "x.conf~",
 * "x.conf.swp", "4913") and fs_write_atomic()'s are not.
 */
bool conf_is_confd_name(const char *name);

/* Look up an entry by name (NULL when absent). */
const struct conf_container *conf_container_find(const struct conf *c, const char *name);

/*
 * The normalised configuration as canonical s-expressions: the host form,
 * then networks, images and containers, each sorted by name; keys in the
 * fixed order documented in docs/config.md; defaults explicit; sizes in the
 * largest exact binary unit, durations in the largest exact unit. Reading
 * the output back gives a configuration that prints identically.
 */
char *conf_print(const struct conf *c);
/* One container form, as in conf_print(). */
char *conf_container_print(const struct conf_container *ct);

/* Canonical spellings used by the printer ("256M", "90s"). New strings. */
char *conf_size_str(int64_t bytes);
char *conf_duration_str(int64_t ns);

/*
 * SHA-256 (64 hex chars + NUL) of the canonical printing of the keys whose
 * change requires recreating the container: kind, image, command, env,
 * workdir, user, hostname, tty, volumes, limits, network, ip, aliases, dns,
 * publish. Keys that apply live (:state, :restart, :depends-on, :on,
 * :health, :domain, :port, :path, :ingress, :tls, :storage, :snapshots,
 * :snapshot-before-change) do not change it.
 */
void conf_container_hash(const struct conf_container *ct, char out[65]);

struct conf_change {
	const char *key; /* ":env", static */
	bool recreate;	 /* true: needs a recreate; false: applies live */
};

/*
 * The keys that differ between two specs of a container (either may be
 * NULL: every key it sets counts as changed), in canonical key order.
 * Returns the count; *out (free()) holds them, or NULL when nothing
 * changed. Recreate is needed iff any change has .recreate set, which is
 * also iff the hashes differ.
 */
size_t conf_container_diff(const struct conf_container *a, const struct conf_container *b,
			   struct conf_change **out);

#endif
