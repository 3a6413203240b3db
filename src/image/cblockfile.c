/*
 * The Cblockfile grammar: instructions and stages, substitution and the
 * canonical text.
 *
 * Reading goes in three layers. Physical lines are joined into logical
 * lines (continuations, comments, blank lines), keeping the original
 * line:column of every byte so an error deep in a continued line still
 * names where it is. A logical line is split into keyword, flags and
 * words; words keep their quotes ("raw"). Cooking turns raw words into
 * values (quotes removed, escapes resolved, and with a variable table,
 * substituted), so cbf_expand() can run the same cooking again later. The
 * first and the cooking are the lexer's (cblockfile_lex.c); this file
 * reads instructions from words and interprets them.
 *
 * The reader never recurses on input structure except for ${NAME:-word}
 * defaults, which are bounded by a depth limit.
 */
#include "image/cblockfile.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[CBF_KIND_COUNT] = {
	[CBF_RUN] = "RUN",
	[CBF_ADD] = "ADD",
	[CBF_COPY] = "COPY",
	[CBF_ENV] = "ENV",
	[CBF_WORKDIR] = "WORKDIR",
	[CBF_ROOTPIVOT] = "ROOTPIVOT",
	[CBF_ENTRYPOINT] = "ENTRYPOINT",
	[CBF_CMD] = "CMD",
	[CBF_OSRELEASE] = "OSRELEASE",
	[CBF_AUDITCFG] = "AUDITCFG",
	[CBF_ARG] = "ARG",
	[CBF_LABEL] = "LABEL",
	[CBF_USER] = "USER",
	[CBF_EXPOSE] = "EXPOSE",
	[CBF_VOLUME] = "VOLUME",
	[CBF_HEALTHCHECK] = "HEALTHCHECK",
	[CBF_SHELL] = "SHELL",
};

const char *cbf_kind_name(enum cbf_kind kind)
{
	return (unsigned)kind < CBF_KIND_COUNT ? kind_names[kind] : "?";
}

/* ---- freeing ---- */

static void words_free(struct cbf_word *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i].raw);
	free(w);
}

static void kv_free(struct cbf_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* Drop the cooked fields (they are rebuilt by cooking). */
static void instr_uncook(struct cbf_instr *in)
{
	kv_free(in->kv, in->nkv);
	in->kv = NULL;
	in->nkv = 0;
	free(in->value);
	in->value = NULL;
}

static void instr_release(struct cbf_instr *in)
{
	words_free(in->flags, in->nflags);
	words_free(in->words, in->nwords);
	free(in->rest);
	strv_free(in->argv);
	free(in->shell);
	instr_uncook(in);
	free(in->from);
	free(in->chown);
	free(in->chmod);
	memset(in, 0, sizeof(*in));
}

void cbf_file_free(struct cbf_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nargs; i++)
		instr_release(&f->args[i]);
	free(f->args);
	for (size_t s = 0; s < f->nstages; s++) {
		struct cbf_stage *st = &f->stages[s];
		for (size_t i = 0; i < st->n; i++)
			instr_release(&st->instrs[i]);
		free(st->instrs);
		free(st->base_word.raw);
		free(st->base);
		free(st->name);
	}
	free(f->stages);
	free(f->file);
	free(f);
}

int cbf_stage_find(const struct cbf_file *f, const char *ref)
{
	if (!ref || !*ref)
		return -1;
	bool digits = true;
	for (const char *p = ref; *p; p++)
		if (!isdigit((unsigned char)*p))
			digits = false;
	if (digits) {
		long long idx;
		if (parse_int(ref, 0, (long long)f->nstages - 1, &idx) == 0)
			return (int)idx;
		return -1;
	}
	for (size_t i = 0; i < f->nstages; i++)
		if (f->stages[i].name && strcasecmp(f->stages[i].name, ref) == 0)
			return (int)i;
	return -1;
}

enum cbf_add_source cbf_add_source_kind(const char *src)
{
	static const char *const exts[] = {".tar",     ".tar.gz", ".tgz", ".tar.xz",  ".txz",
					   ".tar.bz2", ".tbz2",	  ".tbz", ".tar.zst", ".tzst"};
	bool url = strncasecmp(src, "http://", 7) == 0 || strncasecmp(src, "https://", 8) == 0;
	size_t n = strlen(src);
	bool archive = false;
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		size_t e = strlen(exts[i]);
		if (n > e && strcasecmp(src + n - e, exts[i]) == 0)
			archive = true;
	}
	if (url)
		return archive ? CBF_ADD_ARCHIVE_URL : CBF_ADD_URL;
	return archive ? CBF_ADD_ARCHIVE : CBF_ADD_FILE;
}

/* ---- interpreting an instruction from its raw words ---- */

struct ctx {
	const char *file;
	char esc;
	const struct cbf_file *f; /* for --from lookups */
	size_t stage;		  /* the stage being read */
	const struct cbf_vars *v; /* NULL while reading */
};

/* Whether a value still holds an unsubstituted variable (checked after expansion). */
static bool has_var(const char *s)
{
	return strchr(s, '$') != NULL;
}

static bool valid_var_name(const char *s)
{
	if (!cbf_is_name_start((unsigned char)*s))
		return false;
	for (const char *p = s; *p; p++)
		if (!cbf_is_name_char((unsigned char)*p))
			return false;
	return true;
}

static bool has_blank_or_ctl(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return true;
	return false;
}

/* First '=' outside quotes in a raw word, or -1. */
static long raw_eq(const char *raw, char esc)
{
	char q = 0;
	for (long i = 0; raw[i]; i++) {
		char ch = raw[i];
		if (q == '\'') {
			if (ch == '\'')
				q = 0;
		} else if (ch == esc && raw[i + 1]) {
			i++;
		} else if (q == '"') {
			if (ch == '"')
				q = 0;
		} else if (ch == '\'' || ch == '"') {
			q = ch;
		} else if (ch == '=') {
			return i;
		}
	}
	return -1;
}

/* "K=V K2=V2" pairs, or the legacy "K V..." / cblocks "K = V..." forms (ENV, LABEL). */
static int cook_pairs(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	struct cbf_site at;
	long eq0 = raw_eq(in->words[0].raw, c->esc);
	if (eq0 < 0) {
		/* Legacy: the rest of the line is the value. */
		struct cbf_kv kv = {0};
		if (cbf_cook_word(c->file, &in->words[0], c->v, c->esc, &kv.key, err) < 0)
			return -1;
		size_t vw = 1;
		if (in->nwords >= 2 && strcmp(in->words[1].raw, "=") == 0)
			vw = 2; /* cblocks writes ENV KEY = "value" */
		if (in->nwords <= vw && vw == 1) {
			free(kv.key);
			return cbf_err_at(err, c->file, in->words[0].line, in->words[0].col,
					  "%s %s needs a value: write %s NAME=value",
					  cbf_kind_name(in->kind), in->words[0].raw,
					  cbf_kind_name(in->kind));
		}
		if (in->nwords > vw) {
			const struct cbf_word *w = &in->words[vw];
			at = (struct cbf_site){c->file, w->line, w->col};
			if (cbf_cook_str(&at, c->v, c->esc, in->rest + w->off,
					 strlen(in->rest + w->off), &kv.value, err) < 0) {
				free(kv.key);
				return -1;
			}
		} else {
			kv.value = xstrdup("");
		}
		in->kv = xmalloc(sizeof(kv));
		in->kv[0] = kv;
		in->nkv = 1;
	} else {
		in->kv = xcalloc(in->nwords, sizeof(*in->kv));
		for (size_t i = 0; i < in->nwords; i++) {
			const struct cbf_word *w = &in->words[i];
			long eq = raw_eq(w->raw, c->esc);
			if (eq < 0)
				return cbf_err_at(err, c->file, w->line, w->col,
						  "expected NAME=value, got \"%s\" (quote a value "
						  "that holds blanks)",
						  w->raw);
			at = (struct cbf_site){c->file, w->line, w->col};
			char *key, *val;
			if (cbf_cook_str(&at, c->v, c->esc, w->raw, (size_t)eq, &key, err) < 0)
				return -1;
			at.col += (int)eq + 1;
			if (cbf_cook_str(&at, c->v, c->esc, w->raw + eq + 1,
					 strlen(w->raw + eq + 1), &val, err) < 0) {
				free(key);
				return -1;
			}
			in->kv[in->nkv++] = (struct cbf_kv){key, val};
		}
	}
	for (size_t i = 0; i < in->nkv; i++) {
		if (!in->kv[i].key[0] || strchr(in->kv[i].key, '='))
			return cbf_err_at(err, c->file, in->words[0].line, in->words[0].col,
					  "%s: a name must not be empty or hold '='",
					  cbf_kind_name(in->kind));
		if (in->kind == CBF_ENV && has_blank_or_ctl(in->kv[i].key))
			return cbf_err_at(err, c->file, in->words[0].line, in->words[0].col,
					  "ENV: name \"%s\" must not hold blanks", in->kv[i].key);
	}
	return 0;
}

static int cook_expose(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	for (size_t i = 0; i < in->nwords; i++) {
		const struct cbf_word *w = &in->words[i];
		autofree char *s = NULL;
		if (cbf_cook_word(c->file, w, c->v, c->esc, &s, err) < 0)
			goto fail;
		if (!c->v && has_var(s)) {
			strv_push(&v, s); /* checked after substitution */
			continue;
		}
		char *slash = strchr(s, '/');
		const char *proto = "tcp";
		if (slash) {
			*slash = '\0';
			proto = slash + 1;
			if (strcasecmp(proto, "tcp") && strcasecmp(proto, "udp") &&
			    strcasecmp(proto, "sctp")) {
				cbf_err_at(err, c->file, w->line, w->col,
					   "EXPOSE: protocol \"%s\" is not tcp, udp or sctp",
					   proto);
				goto fail;
			}
		}
		long long lo, hi;
		char *dash = strchr(s, '-');
		if (dash)
			*dash = '\0';
		if (parse_int(s, 1, 65535, &lo) < 0 ||
		    (dash && (parse_int(dash + 1, 1, 65535, &hi) < 0 || hi < lo))) {
			cbf_err_at(
				err, c->file, w->line, w->col,
				"EXPOSE: \"%s\" is not a port: expected PORT[/tcp|udp|sctp] with "
				"1 <= PORT <= 65535, or a range like 8000-8010",
				w->raw);
			goto fail;
		}
		char lproto[5];
		size_t k = 0;
		for (; proto[k] && k < 4; k++)
			lproto[k] = (char)tolower((unsigned char)proto[k]);
		lproto[k] = '\0';
		if (dash)
			strv_push_owned(&v, xasprintf("%lld-%lld/%s", lo, hi, lproto));
		else
			strv_push_owned(&v, xasprintf("%lld/%s", lo, lproto));
	}
	in->argv = v.v;
	return 0;
fail:
	strv_release(&v);
	return -1;
}

/* The whole argument text as one value (WORKDIR, USER, ROOTPIVOT, OSRELEASE, AUDITCFG). */
static int cook_whole(const struct ctx *c, struct cbf_instr *in, char **out, struct clbsd_err *err)
{
	struct cbf_site at = {c->file, in->rest_line, in->rest_col};
	return cbf_cook_str(&at, c->v, c->esc, in->rest, strlen(in->rest), out, err);
}

static bool chars_in(const char *s, const char *extra)
{
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
			return false;
	return true;
}

/* Check a single value once it no longer holds variables. */
/* VOLUME's paths are absolute: a relative one names no place in the container. */
static int check_volume(const struct ctx *c, const struct cbf_instr *in, struct clbsd_err *err)
{
	for (size_t i = 0; in->argv && in->argv[i]; i++) {
		const char *s = in->argv[i];
		if (s[0] == '/' || (!c->v && has_var(s)))
			continue;
		int line = in->rest_line, col = in->rest_col;
		if (!in->exec_form && i < in->nwords) {
			line = in->words[i].line;
			col = in->words[i].col;
		}
		return cbf_err_at(err, c->file, line, col,
				  "VOLUME %s: a volume's path is absolute (/%s?)", s, s);
	}
	return 0;
}

static int check_value(const struct ctx *c, const struct cbf_instr *in, const char *s,
		       struct clbsd_err *err)
{
	const char *what = cbf_kind_name(in->kind);
	int line = in->rest_line, col = in->rest_col;
	if (!c->v && has_var(s))
		return 0;
	if (!*s)
		return cbf_err_at(err, c->file, line, col, "%s: the value is empty", what);
	switch (in->kind) {
	case CBF_WORKDIR:
		if (strchr(s, '\n'))
			return cbf_err_at(err, c->file, line, col,
					  "WORKDIR: a path has no newline");
		return 0;
	case CBF_ROOTPIVOT:
		if (!fs_path_is_clean_abs(s) || strcmp(s, "/") == 0)
			return cbf_err_at(err, c->file, line, col,
					  "ROOTPIVOT: \"%s\" must be an absolute directory below / "
					  "without . or .. (like /new)",
					  s);
		return 0;
	case CBF_USER: {
		const char *colon = strchr(s, ':');
		if (has_blank_or_ctl(s) || s[0] == ':' ||
		    (colon && (!colon[1] || strchr(colon + 1, ':'))))
			return cbf_err_at(err, c->file, line, col,
					  "USER: \"%s\" is not USER[:GROUP] (names or numeric ids)",
					  s);
		return 0;
	}
	case CBF_OSRELEASE:
		if (strlen(s) > 32 || !chars_in(s, "._+-"))
			return cbf_err_at(
				err, c->file, line, col,
				"OSRELEASE: \"%s\" is not a release name like 14.3-RELEASE "
				"(letters, digits and . _ + -, at most 32)",
				s);
		return 0;
	case CBF_AUDITCFG:
		if (strlen(s) > 256 || !chars_in(s, ",_^+-"))
			return cbf_err_at(err, c->file, line, col,
					  "AUDITCFG: \"%s\" is not a comma-separated list of audit "
					  "classes like \"ex,pc\"",
					  s);
		return 0;
	default:
		return 0;
	}
}

static int cook_copy(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	if (in->exec_form)
		return 0; /* JSON form: the strings are final */
	struct strv v = STRV_INIT;
	for (size_t i = 0; i < in->nwords; i++) {
		char *s;
		if (cbf_cook_word(c->file, &in->words[i], c->v, c->esc, &s, err) < 0) {
			strv_release(&v);
			return -1;
		}
		strv_push_owned(&v, s);
	}
	strv_free(in->argv);
	in->argv = v.v;
	return 0;
}

static int check_copy(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	size_t n = strv_len(in->argv);
	const char *what = cbf_kind_name(in->kind);
	if (n < 2)
		return cbf_err_at(err, c->file, in->rest_line, in->rest_col,
				  "%s needs a source and a destination: %s SRC... DEST", what,
				  what);
	for (size_t i = 0; i < n; i++)
		if (!in->argv[i][0])
			return cbf_err_at(err, c->file, in->rest_line, in->rest_col,
					  "%s: an empty path", what);
	const char *dest = in->argv[n - 1];
	if (n > 2 && dest[strlen(dest) - 1] != '/' && !(c->v == NULL && has_var(dest)))
		return cbf_err_at(err, c->file, in->rest_line, in->rest_col,
				  "%s with several sources needs a directory destination ending "
				  "in '/', not \"%s\"",
				  what, dest);
	return 0;
}

/* (Re)cook the substitutable parts of an instruction. */
static int cook_instr(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	instr_uncook(in);
	switch (in->kind) {
	case CBF_ENV:
	case CBF_LABEL:
		return cook_pairs(c, in, err);
	case CBF_ARG:
		/* Values are decided by cbf_expand(); here only the syntax. */
		in->kv = xcalloc(in->nwords, sizeof(*in->kv));
		for (size_t i = 0; i < in->nwords; i++) {
			const struct cbf_word *w = &in->words[i];
			long eq = raw_eq(w->raw, c->esc);
			size_t klen = eq < 0 ? strlen(w->raw) : (size_t)eq;
			struct cbf_kv kv = {xstrndup(w->raw, klen), NULL};
			in->kv[in->nkv++] = kv;
			if (!valid_var_name(kv.key))
				return cbf_err_at(
					err, c->file, w->line, w->col,
					"ARG: \"%s\" is not a name (letters, digits and _, "
					"not starting with a digit)",
					kv.key);
			if (eq >= 0) {
				struct cbf_site at = {c->file, w->line, w->col + (int)eq + 1};
				if (cbf_cook_str(&at, c->v, c->esc, w->raw + eq + 1,
						 strlen(w->raw + eq + 1), &in->kv[i].value,
						 err) < 0)
					return -1;
			}
		}
		return 0;
	case CBF_EXPOSE:
		strv_free(in->argv);
		in->argv = NULL;
		return cook_expose(c, in, err);
	case CBF_VOLUME:
		if (in->exec_form)
			return check_volume(c, in, err);
		/* fall through: words, like COPY */
		{
			struct strv v = STRV_INIT;
			for (size_t i = 0; i < in->nwords; i++) {
				char *s;
				if (cbf_cook_word(c->file, &in->words[i], c->v, c->esc, &s, err) <
				    0) {
					strv_release(&v);
					return -1;
				}
				strv_push_owned(&v, s);
			}
			strv_free(in->argv);
			in->argv = v.v;
		}
		return check_volume(c, in, err);
	case CBF_COPY:
	case CBF_ADD:
		if (cook_copy(c, in, err) < 0)
			return -1;
		return check_copy(c, in, err);
	case CBF_WORKDIR:
	case CBF_USER:
	case CBF_ROOTPIVOT:
	case CBF_OSRELEASE:
	case CBF_AUDITCFG:
		if (cook_whole(c, in, &in->value, err) < 0)
			return -1;
		return check_value(c, in, in->value, err);
	default:
		return 0;
	}
}

/* ---- reading ---- */

static int lookup_kind(const char *s, size_t n)
{
	for (int k = 0; k < CBF_KIND_COUNT; k++)
		if (strlen(kind_names[k]) == n && strncasecmp(kind_names[k], s, n) == 0)
			return k;
	return -1;
}

static int parse_duration_flag(const struct ctx *c, const struct cbf_word *w, const char *val,
			       int64_t *out, struct clbsd_err *err)
{
	struct clbsd_err e2;
	int64_t ns;
	if (parse_duration(val, &ns, &e2) < 0 || ns < 0)
		return cbf_err_at(err, c->file, w->line, w->col,
				  "HEALTHCHECK: \"%s\" is not a duration like 30s, 1m30s or 500ms",
				  val);
	*out = ns;
	return 0;
}

/* The flags of COPY/ADD/HEALTHCHECK; they are taken literally (no substitution). */
static int apply_flags(const struct ctx *c, struct cbf_instr *in, struct clbsd_err *err)
{
	for (size_t i = 0; i < in->nflags; i++) {
		const struct cbf_word *w = &in->flags[i];
		const char *name = w->raw + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		autofree char *val = NULL;
		if (eq) {
			struct cbf_site at = {c->file, w->line, w->col + (int)(eq - w->raw) + 1};
			if (cbf_cook_str(&at, NULL, c->esc, eq + 1, strlen(eq + 1), &val, err) < 0)
				return -1;
		}
#define IS(f) (nlen == strlen(f) && strncasecmp(name, f, nlen) == 0)
		bool copyadd = in->kind == CBF_COPY || in->kind == CBF_ADD;
		bool hc = in->kind == CBF_HEALTHCHECK;
		bool known = (in->kind == CBF_COPY && IS("from")) ||
			     (copyadd && (IS("chown") || IS("chmod"))) ||
			     (hc && (IS("interval") || IS("timeout") || IS("start-period") ||
				     IS("retries")));
		if (!known)
			return cbf_err_at(err, c->file, w->line, w->col,
					  "%s does not take the flag --%.*s",
					  cbf_kind_name(in->kind), (int)nlen, name);
		if (!val)
			return cbf_err_at(err, c->file, w->line, w->col,
					  "%s: flag %s needs a value: --%.*s=VALUE",
					  cbf_kind_name(in->kind), w->raw, (int)nlen, name);
		if (in->kind == CBF_COPY && IS("from")) {
			int idx = cbf_stage_find(c->f, val);
			if (idx < 0 || (size_t)idx >= c->stage)
				return cbf_err_at(
					err, c->file, w->line, w->col,
					"COPY --from=%s: no earlier stage is named or "
					"numbered %s (to copy from an image, add FROM IMAGE "
					"AS NAME first)",
					val, val);
			free(in->from);
			in->from = steal_ptr(&val);
			in->from_stage = idx;
		} else if (copyadd && IS("chown")) {
			const char *colon = strchr(val, ':');
			if (!*val || val[0] == ':' || has_blank_or_ctl(val) ||
			    (colon && (!colon[1] || strchr(colon + 1, ':'))))
				return cbf_err_at(err, c->file, w->line, w->col,
						  "%s --chown=%s: expected USER[:GROUP]",
						  cbf_kind_name(in->kind), val);
			free(in->chown);
			in->chown = steal_ptr(&val);
		} else if (copyadd && IS("chmod")) {
			bool ok = strlen(val) >= 1 && strlen(val) <= 4;
			for (const char *p = val; *p; p++)
				if (*p < '0' || *p > '7')
					ok = false;
			if (!ok)
				return cbf_err_at(
					err, c->file, w->line, w->col,
					"%s --chmod=%s: expected an octal mode like 644 or "
					"0755",
					cbf_kind_name(in->kind), val);
			free(in->chmod);
			in->chmod = steal_ptr(&val);
		} else if (hc && IS("interval")) {
			if (parse_duration_flag(c, w, val, &in->health.interval_ns, err) < 0)
				return -1;
		} else if (hc && IS("timeout")) {
			if (parse_duration_flag(c, w, val, &in->health.timeout_ns, err) < 0)
				return -1;
		} else if (hc && IS("start-period")) {
			if (parse_duration_flag(c, w, val, &in->health.start_period_ns, err) < 0)
				return -1;
		} else if (hc && IS("retries")) {
			long long r;
			if (parse_int(val, 0, 1000000, &r) < 0)
				return cbf_err_at(err, c->file, w->line, w->col,
						  "HEALTHCHECK --retries=%s: expected a count",
						  val);
			in->health.retries = (int)r;
		} else {
			return cbf_err_at(err, c->file, w->line, w->col,
					  "%s does not take the flag --%.*s",
					  cbf_kind_name(in->kind), (int)nlen, name);
		}
#undef IS
	}
	return 0;
}

/* cblocks writes RUN "cmd args": a shell form that is one double-quoted string. */
static char *unquote_whole(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return NULL;
	struct buf b = BUF_INIT;
	for (size_t i = 1; i < n - 1; i++) {
		if (s[i] == '\\' && i + 1 < n - 1) {
			buf_addc(&b, s[++i]);
			continue;
		}
		if (s[i] == '"') {
			buf_release(&b);
			return NULL;
		}
		buf_addc(&b, s[i]);
	}
	if (!b.data)
		buf_adds(&b, "");
	return buf_detach(&b, NULL);
}

/* RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK CMD: exec form or shell form from l[from..to). */
static int parse_command(const struct ctx *c, const struct cbf_lline *l, size_t from, size_t to,
			 struct cbf_instr *in, bool exec_only, struct clbsd_err *err)
{
	if (from < to && l->s.data[from] == '[') {
		if (cbf_parse_json_array(c->file, l, from, to, &in->argv, err) < 0)
			return -1;
		in->exec_form = true;
		if (in->kind == CBF_SHELL && !in->argv[0]) {
			int ln, cl;
			cbf_ll_pos(l, from, &ln, &cl);
			return cbf_err_at(
				err, c->file, ln, cl,
				"SHELL needs at least the shell: SHELL [\"/bin/sh\", \"-c\"]");
		}
		return 0;
	}
	if (exec_only) {
		int ln, cl;
		cbf_ll_pos(l, from, &ln, &cl);
		return cbf_err_at(err, c->file, ln, cl,
				  "%s takes a JSON array like [\"/bin/sh\", \"-c\"]",
				  cbf_kind_name(in->kind));
	}
	char *text = xstrndup(l->s.data + from, to - from);
	char *uq = unquote_whole(text);
	if (uq) {
		free(text);
		text = uq;
	}
	in->shell = text;
	return 0;
}

static bool takes_flags(enum cbf_kind k)
{
	return k == CBF_COPY || k == CBF_ADD || k == CBF_HEALTHCHECK;
}

static int read_instr(struct ctx *c, const struct cbf_lline *l, enum cbf_kind kind, size_t kwstart,
		      size_t p, struct cbf_instr *in, struct clbsd_err *err)
{
	const char *s = l->s.data;
	size_t n = l->s.len;
	memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->from_stage = -1;
	cbf_ll_pos(l, kwstart, &in->line, &in->col);

	/* Flags: "--name=value" words right after the keyword. */
	while (takes_flags(kind) && p + 1 < n && s[p] == '-' && s[p + 1] == '-') {
		size_t e = p;
		while (e < n && !cbf_is_blank((unsigned char)s[e]))
			e++;
		struct cbf_word w = {xstrndup(s + p, e - p), 0, 0, 0};
		cbf_ll_pos(l, p, &w.line, &w.col);
		p = cbf_skip_blank(s, e, n);
		if (kind == CBF_COPY && !strchr(w.raw, '=') && strcasecmp(w.raw, "--from") == 0) {
			/* cblocks: COPY --FROM STAGE SRC DEST */
			size_t ve = p;
			while (ve < n && !cbf_is_blank((unsigned char)s[ve]))
				ve++;
			char *joined = xasprintf("--from=%.*s", (int)(ve - p), s + p);
			free(w.raw);
			w.raw = joined;
			p = cbf_skip_blank(s, ve, n);
		}
		in->flags = xrealloc(in->flags, (in->nflags + 1) * sizeof(*in->flags));
		in->flags[in->nflags++] = w;
	}
	size_t end = n;
	while (end > p && cbf_is_blank((unsigned char)s[end - 1]))
		end--;
	in->rest = xstrndup(s + p, end - p);
	cbf_ll_pos(l, p, &in->rest_line, &in->rest_col);
	if (p >= end) {
		int ln, cl;
		cbf_ll_pos(l, kwstart, &ln, &cl);
		return cbf_err_at(err, c->file, ln, cl,
				  "%s needs an argument (see docs/cblockfile.md)",
				  cbf_kind_name(kind));
	}
	if (apply_flags(c, in, err) < 0)
		return -1;

	switch (kind) {
	case CBF_RUN:
		/* BuildKit's RUN --mount/--network/--security: a clear no, rather
		   than a shell asked to run a command named --mount=... */
		if (end - p > 2 && s[p] == '-' && s[p + 1] == '-' &&
		    isalpha((unsigned char)s[p + 2])) {
			size_t e = p;
			while (e < end && !cbf_is_blank((unsigned char)s[e]) && s[e] != '=')
				e++;
			int ln, cl;
			cbf_ll_pos(l, p, &ln, &cl);
			return cbf_err_at(err, c->file, ln, cl,
					  "RUN does not take the flag %.*s (RUN --mount, --network "
					  "and --security are not supported)",
					  (int)(e - p), s + p);
		}
		if (end - p > 2 && s[p] == '<' && s[p + 1] == '<') {
			int ln, cl;
			cbf_ll_pos(l, p, &ln, &cl);
			return cbf_err_at(
				err, c->file, ln, cl,
				"heredocs are not supported; put the script in a file, COPY "
				"it and RUN it, or use continuation lines");
		}
		return parse_command(c, l, p, end, in, false, err);
	case CBF_CMD:
	case CBF_ENTRYPOINT:
		return parse_command(c, l, p, end, in, false, err);
	case CBF_SHELL:
		return parse_command(c, l, p, end, in, true, err);
	case CBF_HEALTHCHECK: {
		size_t we = p;
		while (we < end && !cbf_is_blank((unsigned char)s[we]))
			we++;
		if (we - p == 4 && strncasecmp(s + p, "NONE", 4) == 0) {
			if (we != end || in->nflags) {
				int ln, cl;
				cbf_ll_pos(l, p, &ln, &cl);
				return cbf_err_at(err, c->file, ln, cl,
						  "HEALTHCHECK NONE takes no flags or arguments");
			}
			in->health.none = true;
			return 0;
		}
		if (!(we - p == 3 && strncasecmp(s + p, "CMD", 3) == 0)) {
			int ln, cl;
			cbf_ll_pos(l, p, &ln, &cl);
			return cbf_err_at(
				err, c->file, ln, cl,
				"HEALTHCHECK expects CMD COMMAND or NONE, like HEALTHCHECK "
				"--interval=30s CMD wget -q -O- http://localhost/");
		}
		size_t cs = cbf_skip_blank(s, we, end);
		if (cs >= end) {
			int ln, cl;
			cbf_ll_pos(l, we, &ln, &cl);
			return cbf_err_at(err, c->file, ln, cl, "HEALTHCHECK CMD needs a command");
		}
		return parse_command(c, l, cs, end, in, false, err);
	}
	case CBF_COPY:
	case CBF_ADD:
	case CBF_VOLUME:
		if (s[p] == '[') {
			if (cbf_parse_json_array(c->file, l, p, end, &in->argv, err) < 0)
				return -1;
			in->exec_form = true;
			if (kind == CBF_VOLUME) {
				if (!in->argv[0])
					return cbf_err_at(err, c->file, in->rest_line, in->rest_col,
							  "VOLUME needs at least one path");
				return check_volume(c, in, err);
			}
			return check_copy(c, in, err);
		}
		break;
	default:
		break;
	}
	if (cbf_split_words(c->file, l, p, end, c->esc, &in->words, &in->nwords, err) < 0)
		return -1;
	return cook_instr(c, in, err);
}

static bool valid_stage_name(const char *s)
{
	if (!isalpha((unsigned char)s[0]) || strlen(s) > 128)
		return false;
	return chars_in(s, "_.-");
}

static int read_from(struct ctx *c, struct cbf_file *f, const struct cbf_lline *l, size_t kwstart,
		     size_t p, struct clbsd_err *err)
{
	struct cbf_stage st = {.base_stage = -1};
	cbf_ll_pos(l, kwstart, &st.line, &st.col);
	struct cbf_word *w = NULL;
	size_t nw = 0;
	if (cbf_split_words(c->file, l, p, l->s.len, c->esc, &w, &nw, err) < 0)
		return -1;
	int r = -1;
	if (nw > 0 && strncmp(w[0].raw, "--", 2) == 0) {
		cbf_err_at(err, c->file, w[0].line, w[0].col, "FROM does not take the flag %s",
			   w[0].raw);
		goto out;
	}
	if (nw != 1 && !(nw == 3 && strcasecmp(w[1].raw, "AS") == 0)) {
		int ln = st.line, cl = st.col;
		if (nw > 1) {
			ln = w[1].line;
			cl = w[1].col;
		}
		cbf_err_at(err, c->file, ln, cl,
			   nw == 0 ? "FROM needs an image: FROM IMAGE [AS NAME] (or FROM scratch)"
				   : "expected FROM IMAGE [AS NAME]");
		goto out;
	}
	if (nw == 3) {
		if (!valid_stage_name(w[2].raw)) {
			cbf_err_at(err, c->file, w[2].line, w[2].col,
				   "stage name \"%s\" must start with a letter and hold letters, "
				   "digits, _ . -",
				   w[2].raw);
			goto out;
		}
		st.name = xstrdup(w[2].raw);
		for (char *q = st.name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		for (size_t i = 0; i < f->nstages; i++)
			if (f->stages[i].name && strcmp(f->stages[i].name, st.name) == 0) {
				cbf_err_at(
					err, c->file, w[2].line, w[2].col,
					"stage name \"%s\" is already used by the stage at line %d",
					st.name, f->stages[i].line);
				goto out;
			}
	}
	if (cbf_cook_word(c->file, &w[0], NULL, c->esc, &st.base, err) < 0)
		goto out;
	if (!*st.base) {
		cbf_err_at(err, c->file, w[0].line, w[0].col, "FROM: the image is empty");
		goto out;
	}
	st.base_word = w[0];
	w[0].raw = NULL;
	st.base_kind = CBF_BASE_IMAGE;
	if (strcasecmp(st.base, "scratch") == 0) {
		st.base_kind = CBF_BASE_SCRATCH;
	} else {
		for (size_t i = 0; i < f->nstages; i++)
			if (f->stages[i].name && strcasecmp(f->stages[i].name, st.base) == 0) {
				st.base_kind = CBF_BASE_STAGE;
				st.base_stage = (int)i;
			}
	}
	f->stages = xrealloc(f->stages, (f->nstages + 1) * sizeof(*f->stages));
	f->stages[f->nstages++] = st;
	memset(&st, 0, sizeof(st));
	r = 0;
out:
	words_free(w, nw);
	free(st.base_word.raw);
	free(st.base);
	free(st.name);
	return r;
}

int cbf_read(const char *file, const char *text, size_t len, struct cbf_file **out,
	     struct clbsd_err *err)
{
	const char *fname = file ? file : "Cblockfile";
	if (len > CBF_MAX_SIZE)
		return cbf_err_at(err, fname, 1, 1, "the file is %zu bytes; at most %d are read",
				  len, CBF_MAX_SIZE);
	if (cbf_check_utf8(fname, text, len, err) < 0)
		return -err->code;
	/* Editors on some systems start a UTF-8 file with a byte order mark. */
	size_t bom = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	struct cbf_reader r = {.file = fname,
			       .s = text,
			       .pos = bom,
			       .len = len,
			       .line = 1,
			       .esc = '\\',
			       .err = err};
	cbf_read_directives(&r);
	struct cbf_file *f = xcalloc(1, sizeof(*f));
	f->file = xstrdup(fname);
	f->escape = r.esc;
	struct ctx c = {.file = f->file, .esc = r.esc, .f = f};
	struct cbf_lline l = {.s = BUF_INIT};
	bool failed = false;
	while (cbf_next_lline(&r, &l, &failed)) {
		/* An empty logical line (a lone backslash at the end) has no buffer yet. */
		const char *s = l.s.data ? l.s.data : "";
		size_t n = l.s.len;
		size_t k0 = cbf_skip_blank(s, 0, n);
		size_t k = k0;
		while (k < n && isalpha((unsigned char)s[k]))
			k++;
		int ln, cl;
		cbf_ll_pos(&l, k0, &ln, &cl);
		if (k == k0 || (k < n && !cbf_is_blank((unsigned char)s[k]))) {
			size_t e = k;
			while (e < n && !cbf_is_blank((unsigned char)s[e]) && e - k0 < 40)
				e++;
			cbf_err_at(err, f->file, ln, cl,
				   "expected an instruction (FROM, RUN, COPY, ...), got \"%.*s\"",
				   (int)(e - k0), s + k0);
			goto fail;
		}
		size_t p = cbf_skip_blank(s, k, n);
		if (k - k0 == 4 && strncasecmp(s + k0, "FROM", 4) == 0) {
			if (p >= n) {
				cbf_err_at(err, f->file, ln, cl,
					   "FROM needs an image: FROM IMAGE [AS NAME] (or FROM "
					   "scratch)");
				goto fail;
			}
			if (read_from(&c, f, &l, k0, p, err) < 0)
				goto fail;
			continue;
		}
		int kind = lookup_kind(s + k0, k - k0);
		if (kind < 0) {
			cbf_err_at(err, f->file, ln, cl,
				   "unknown instruction \"%.*s\" (see docs/cblockfile.md for the "
				   "list)",
				   (int)(k - k0 > 40 ? 40 : k - k0), s + k0);
			goto fail;
		}
		struct cbf_instr in;
		if (f->nstages == 0) {
			if (kind != CBF_ARG) {
				cbf_err_at(
					err, f->file, ln, cl,
					"%s before the first FROM; a Cblockfile starts with FROM "
					"(only ARG may come before it)",
					kind_names[kind]);
				goto fail;
			}
			c.stage = 0;
			if (read_instr(&c, &l, (enum cbf_kind)kind, k0, p, &in, err) < 0) {
				instr_release(&in);
				goto fail;
			}
			f->args = xrealloc(f->args, (f->nargs + 1) * sizeof(*f->args));
			f->args[f->nargs++] = in;
			continue;
		}
		c.stage = f->nstages - 1;
		struct cbf_stage *st = &f->stages[f->nstages - 1];
		if (read_instr(&c, &l, (enum cbf_kind)kind, k0, p, &in, err) < 0) {
			instr_release(&in);
			goto fail;
		}
		if (kind == CBF_OSRELEASE || kind == CBF_AUDITCFG) {
			for (size_t i = 0; i < st->n; i++)
				if (st->instrs[i].kind == (enum cbf_kind)kind) {
					cbf_err_at(err, f->file, in.line, in.col,
						   "%s is given twice in this stage (first at line "
						   "%d)",
						   kind_names[kind], st->instrs[i].line);
					instr_release(&in);
					goto fail;
				}
		}
		st->instrs = xrealloc(st->instrs, (st->n + 1) * sizeof(*st->instrs));
		st->instrs[st->n++] = in;
	}
	if (failed)
		goto fail;
	if (f->nstages == 0) {
		cbf_err_at(err, f->file, r.line > 1 ? r.line - 1 : 1, 1,
			   "no FROM: a Cblockfile starts with FROM IMAGE (or FROM scratch)");
		goto fail;
	}
	buf_release(&l.s);
	free(l.ln);
	free(l.cl);
	*out = f;
	return 0;
fail:
	buf_release(&l.s);
	free(l.ln);
	free(l.cl);
	cbf_file_free(f);
	return -err->code;
}

/* ---- substitution ---- */

static const char *find_arg(char *const *args, const char *name)
{
	const char *found = NULL;
	size_t n = strlen(name);
	for (size_t i = 0; args && args[i]; i++)
		if (strncmp(args[i], name, n) == 0 && args[i][n] == '=')
			found = args[i] + n + 1;
	return found;
}

static void push_kv(struct strv *names, struct strv *values, const char *k, const char *v)
{
	strv_push(names, k);
	strv_push(values, v);
}

/* ARG instructions: the value in effect (build argument, default, or a global ARG). */
static int expand_args(struct ctx *c, struct cbf_instr *in, struct cbf_vars *v,
		       const struct cbf_vars *global, char *const *build_args,
		       struct clbsd_err *err)
{
	for (size_t i = 0; i < in->nkv; i++) {
		struct cbf_kv *kv = &in->kv[i];
		const struct cbf_word *w = &in->words[i];
		char *val = NULL;
		const char *ba = find_arg(build_args, kv->key);
		long eq = raw_eq(w->raw, c->esc);
		if (ba) {
			val = xstrdup(ba);
		} else if (eq >= 0) {
			struct cbf_site at = {c->file, w->line, w->col + (int)eq + 1};
			if (cbf_cook_str(&at, v, c->esc, w->raw + eq + 1, strlen(w->raw + eq + 1),
					 &val, err) < 0)
				return -1;
		} else if (global) {
			const char *g = cbf_vars_get(global, kv->key, strlen(kv->key));
			if (g)
				val = xstrdup(g);
		}
		free(kv->value);
		kv->value = val;
		if (val)
			push_kv(&v->arg_names, &v->arg_values, kv->key, val);
	}
	return 0;
}

static void env_from_list(struct cbf_vars *v, char *const *env)
{
	for (size_t i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		autofree char *k = xstrndup(env[i], (size_t)(eq - env[i]));
		push_kv(&v->env_names, &v->env_values, k, eq + 1);
	}
}

int cbf_expand(struct cbf_file *f, const struct cbf_expand_opts *opts, struct clbsd_err *err)
{
	static const struct cbf_expand_opts none = {0};
	if (!opts)
		opts = &none;
	struct ctx c = {.file = f->file, .esc = f->escape, .f = f};
	struct cbf_vars global = {0};
	int r = -1;
	/* Per stage, the ENV it ends with, for stages built FROM it. */
	struct cbf_vars *ends = xcalloc(f->nstages ? f->nstages : 1, sizeof(*ends));
	for (size_t i = 0; i < f->nargs; i++) {
		c.v = &global;
		if (expand_args(&c, &f->args[i], &global, NULL, opts->build_args, err) < 0)
			goto out;
	}
	for (size_t s = 0; s < f->nstages; s++) {
		struct cbf_stage *st = &f->stages[s];
		c.stage = s;
		/* FROM sees only the global ARGs. */
		char *base;
		if (cbf_cook_word(f->file, &st->base_word, &global, f->escape, &base, err) < 0)
			goto out;
		if (!*base) {
			free(base);
			cbf_err_at(err, f->file, st->line, st->col,
				   "FROM %s: the image is empty after substitution (pass "
				   "--build-arg?)",
				   st->base_word.raw);
			goto out;
		}
		free(st->base);
		st->base = base;
		st->base_kind = CBF_BASE_IMAGE;
		st->base_stage = -1;
		if (strcasecmp(base, "scratch") == 0) {
			st->base_kind = CBF_BASE_SCRATCH;
		} else {
			for (size_t i = 0; i < s; i++)
				if (f->stages[i].name && strcasecmp(f->stages[i].name, base) == 0) {
					st->base_kind = CBF_BASE_STAGE;
					st->base_stage = (int)i;
				}
		}
		struct cbf_vars *v = &ends[s];
		if (st->base_kind == CBF_BASE_STAGE) {
			const struct cbf_vars *b = &ends[st->base_stage];
			for (size_t i = 0; i < b->env_names.n; i++)
				push_kv(&v->env_names, &v->env_values, b->env_names.v[i],
					b->env_values.v[i]);
		} else if (st->base_kind == CBF_BASE_IMAGE && opts->base_env) {
			env_from_list(v, opts->base_env(base, opts->ctx));
		}
		c.v = v;
		for (size_t i = 0; i < st->n; i++) {
			struct cbf_instr *in = &st->instrs[i];
			if (in->kind == CBF_ARG) {
				if (expand_args(&c, in, v, &global, opts->build_args, err) < 0)
					goto out;
				continue;
			}
			if (cook_instr(&c, in, err) < 0)
				goto out;
			if (in->kind == CBF_ENV)
				for (size_t k = 0; k < in->nkv; k++)
					push_kv(&v->env_names, &v->env_values, in->kv[k].key,
						in->kv[k].value);
		}
	}
	r = 0;
out:
	for (size_t s = 0; s < f->nstages; s++)
		cbf_vars_release(&ends[s]);
	free(ends);
	cbf_vars_release(&global);
	return r < 0 ? -err->code : 0;
}

/* ---- canonical text ---- */

static void canon_str(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_addf(b, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			buf_addf(b, "\\x%02x", *p);
		else
			buf_addc(b, (char)*p);
	}
	buf_addc(b, '"');
}

static void canon_strv(struct buf *b, char *const *v)
{
	buf_addc(b, '[');
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			buf_addc(b, ',');
		canon_str(b, v[i]);
	}
	buf_addc(b, ']');
}

char *cbf_instr_canon(const struct cbf_instr *in)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, cbf_kind_name(in->kind));
	if (in->from_stage >= 0)
		buf_addf(&b, " --from=%d", in->from_stage);
	if (in->chown) {
		buf_adds(&b, " --chown=");
		canon_str(&b, in->chown);
	}
	if (in->chmod)
		buf_addf(&b, " --chmod=%s", in->chmod);
	if (in->kind == CBF_HEALTHCHECK) {
		if (in->health.none) {
			buf_adds(&b, " NONE");
			return buf_detach(&b, NULL);
		}
		buf_addf(&b, " --interval=%lld --timeout=%lld --start-period=%lld --retries=%d CMD",
			 (long long)in->health.interval_ns, (long long)in->health.timeout_ns,
			 (long long)in->health.start_period_ns, in->health.retries);
	}
	if (in->argv) {
		/* COPY/ADD/VOLUME mean the same in JSON and word form; commands do not. */
		bool cmd = in->kind == CBF_RUN || in->kind == CBF_CMD ||
			   in->kind == CBF_ENTRYPOINT || in->kind == CBF_HEALTHCHECK ||
			   in->kind == CBF_SHELL;
		buf_adds(&b, in->exec_form && cmd ? " exec " : " ");
		canon_strv(&b, in->argv);
	}
	if (in->shell) {
		buf_adds(&b, " shell ");
		canon_str(&b, in->shell);
	}
	if (in->value) {
		buf_addc(&b, ' ');
		canon_str(&b, in->value);
	}
	for (size_t i = 0; i < in->nkv; i++) {
		buf_addc(&b, ' ');
		canon_str(&b, in->kv[i].key);
		/* An ARG's value counts where it is used, not where it is declared. */
		if (in->kind != CBF_ARG) {
			buf_addc(&b, '=');
			canon_str(&b, in->kv[i].value);
		}
	}
	return buf_detach(&b, NULL);
}
