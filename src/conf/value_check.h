/*
 * The value checkers shared by the form readers (core/config.c for the
 * host, image and network forms, core/spec_form.c for containers). Each takes the value node, reports a diagnostic at
 * its position naming the form and the key when it is wrong, and writes
 * *out only when it is right (returning true).
 */
#ifndef CLBSD_CONF_CHECK_H
#define CLBSD_CONF_CHECK_H

#include "conf/conf.h"

/* The form being validated: "container web", "host". */
struct vctx {
	struct conf_diags *diags;
	const char *what;
};

void verr(struct vctx *c, const struct sexp *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "expected EXPECTED, got DESCRIPTION" at x, for key `key`. */
void vexpect(struct vctx *c, const char *key, const struct sexp *x, const char *expected);

/*
 * Walk the plist items[start..] of `list`: every key must be a keyword from
 * `keys` (NULL-terminated) appearing once, each followed by a value. Calls
 * fn(c, obj, index of the key in `keys`, value, key node) for each pair.
 * `where` prefixes messages for nested plists (":limits") or is "".
 */
typedef void (*plist_fn)(struct vctx *c, void *obj, int key, const struct sexp *v,
			 const struct sexp *k);
void walk_plist(struct vctx *c, const struct sexp *list, size_t start, const char *const *keys,
		const char *where, plist_fn fn, void *obj);
/* The nearest name in `names` within a small edit distance, or NULL. */
const char *did_you_mean(const char *word, const char *const *names);

bool is_sym(const struct sexp *x, const char *name);
bool chk_string(struct vctx *c, const char *key, const struct sexp *x, bool allow_empty,
		char **out);
bool chk_name(struct vctx *c, const char *key, const struct sexp *x, char **out);
bool chk_bool(struct vctx *c, const char *key, const struct sexp *x, bool *out);
bool chk_int(struct vctx *c, const char *key, const struct sexp *x, long long min, long long max,
	     long long *out);
bool chk_port(struct vctx *c, const char *key, const struct sexp *x, int *out);
bool chk_size(struct vctx *c, const char *key, const struct sexp *x, int64_t *out);
bool chk_duration(struct vctx *c, const char *key, const struct sexp *x, int64_t *out);
/* A clean absolute path, normalised (repeated and trailing '/' removed). */
bool chk_abs_path(struct vctx *c, const char *key, const struct sexp *x, char **out);
/* A proper list (NULL when x is not one, after reporting). */
bool chk_list(struct vctx *c, const char *key, const struct sexp *x, const char *expected);
/* A list of strings (min_n .. any). */
bool chk_strings(struct vctx *c, const char *key, const struct sexp *x, size_t min_n, char ***out);
/* A list of ("K" . "V") pairs, keys matching [A-Za-z_][A-Za-z0-9_]*, unique; sorted. */
bool chk_pairs(struct vctx *c, const char *key, const struct sexp *x, struct conf_kv **out,
	       size_t *n);
/* An IPv6 subnet (/64 to /120, no host bits), normalised into *out. */
bool chk_cidr6(struct vctx *c, const char *key, const struct sexp *x, char **out);
bool chk_cidr(struct vctx *c, const char *key, const struct sexp *x, struct conf_cidr *out);
/* Dotted IPv4 "a.b.c.d" -> host-order value. */
bool parse_ipv4(const char *s, uint32_t *out);
bool chk_hostname(struct vctx *c, const char *key, const struct sexp *x, char **out);
/* An IPv4 or bracketed IPv6 address and a port: "0.0.0.0:80", "[::]:443". */
bool chk_listen(struct vctx *c, const char *key, const struct sexp *x, char **out);

#endif
