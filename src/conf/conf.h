/*
 * src/conf: the configuration language. An s-expression reader (sexp_*),
 * the diagnostics list every user-input problem goes to (conf_diags_*),
 * positions, and the value checkers the form readers share
 * (conf/value_check.h). What the forms mean (host, container, image,
 * network, override) is src/core: core/spec.h for a container, whose
 * struct ctr_spec the API's JSON decodes into too, and core/config.h for
 * the whole configuration.
 *
 * Imports: util/ only. (conf/ sits below core/ and every driver; it never
 * includes them.)
 *
 * Invariants:
 * - Everything here is pure: no file is written, nothing is started. (The
 *   one writer in src/conf is live.h, for the daemon-owned
 *   conf.d/90-live.conf, which it edits as s-expressions.)
 * - Positions are 1-based; columns count bytes, not characters.
 * - Sizes are bytes, durations nanoseconds, both int64_t.
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
/* Values shared by the forms                                               */
/* ------------------------------------------------------------------------ */

/* Where a value was declared; file is borrowed from the configuration that read it. */
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

/* A ("KEY" . "VALUE") pair. */
struct conf_kv {
	char *key, *value;
};
void conf_kvs_free(struct conf_kv *v, size_t n);

/* Canonical spellings of sizes and durations ("256M", "90s"). New strings. */
char *conf_size_str(int64_t bytes);
char *conf_duration_str(int64_t ns);

#endif
