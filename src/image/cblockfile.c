/*
 * The Cblockfile reader.
 *
 * Reading goes in three layers. Physical lines are joined into logical
 * lines (continuations, comments, blank lines), keeping the original
 * line:column of every byte so an error deep in a continued line still
 * names where it is. A logical line is split into keyword, flags and
 * words; words keep their quotes ("raw"). Cooking turns raw words into
 * values (quotes removed, escapes resolved, and with a variable table,
 * substituted), so cbf_expand() can run the same cooking again later.
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

#define SUBST_DEPTH_MAX 8

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

static int err_at(struct clbsd_err *err, const char *file, int line, int col, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));

static int err_at(struct clbsd_err *err, const char *file, int line, int col, const char *fmt,
		  ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s:%d:%d: %s", file, line, col, msg);
}

/* ---- logical lines ---- */

struct lline {
	struct buf s;
	int *ln, *cl; /* position of each byte of s */
	size_t cap;
	int end_line, end_col; /* just past the last byte */
};

static void ll_add(struct lline *l, char c, int line, int col)
{
	if (l->s.len + 1 > l->cap) {
		l->cap = l->cap ? l->cap * 2 : 128;
		l->ln = xrealloc(l->ln, l->cap * sizeof(int));
		l->cl = xrealloc(l->cl, l->cap * sizeof(int));
	}
	l->ln[l->s.len] = line;
	l->cl[l->s.len] = col;
	buf_addc(&l->s, c);
	l->end_line = line;
	l->end_col = col + 1;
}

static void ll_pos(const struct lline *l, size_t i, int *line, int *col)
{
	if (i < l->s.len) {
		*line = l->ln[i];
		*col = l->cl[i];
	} else {
		*line = l->end_line;
		*col = l->end_col;
	}
}

struct reader {
	const char *file;
	const char *s;
	size_t len, pos;
	int line;
	char esc;
	struct clbsd_err *err;
};

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The physical line at r->pos: [start, end) without "\r\n". Advances past it. */
static void phys_line(struct reader *r, size_t *start, size_t *end)
{
	*start = r->pos;
	while (r->pos < r->len && r->s[r->pos] != '\n')
		r->pos++;
	*end = r->pos;
	if (*end > *start && r->s[*end - 1] == '\r')
		(*end)--;
	if (r->pos < r->len)
		r->pos++;
}

static size_t skip_blank_at(const char *s, size_t i, size_t end)
{
	while (i < end && is_blank((unsigned char)s[i]))
		i++;
	return i;
}

/*
 * Parser directives: "# escape=`" lines at the very top. Only escape is
 * understood; other directives ("# syntax=") are ignored, and the first
 * line that is not a directive ends them.
 */
static void read_directives(struct reader *r)
{
	while (r->pos < r->len) {
		size_t save = r->pos;
		int save_line = r->line;
		size_t a, e;
		phys_line(r, &a, &e);
		size_t i = skip_blank_at(r->s, a, e);
		if (i >= e || r->s[i] != '#')
			goto stop;
		i = skip_blank_at(r->s, i + 1, e);
		size_t k = i;
		while (k < e && (isalpha((unsigned char)r->s[k])))
			k++;
		if (k == i)
			goto stop;
		size_t eq = skip_blank_at(r->s, k, e);
		if (eq >= e || r->s[eq] != '=')
			goto stop;
		size_t v = skip_blank_at(r->s, eq + 1, e);
		size_t ve = e;
		while (ve > v && is_blank((unsigned char)r->s[ve - 1]))
			ve--;
		if (k - i == 6 && strncasecmp(r->s + i, "escape", 6) == 0) {
			if (ve - v == 1 && (r->s[v] == '\\' || r->s[v] == '`'))
				r->esc = r->s[v];
			else
				goto stop; /* not a valid directive: an ordinary comment */
		}
		r->line++;
		continue;
	stop:
		r->pos = save;
		r->line = save_line;
		return;
	}
}

/*
 * The next logical line into l (reset first). Returns false at the end of
 * the input. A NUL byte is an error (returns false with err set).
 */
static bool next_lline(struct reader *r, struct lline *l, bool *failed)
{
	buf_reset(&l->s);
	for (;;) {
		if (r->pos >= r->len)
			return false;
		size_t a, e;
		int line = r->line++;
		phys_line(r, &a, &e);
		size_t i = skip_blank_at(r->s, a, e);
		if (i >= e || r->s[i] == '#')
			continue;
		/* An instruction starts here; join its continuations. */
		for (;;) {
			size_t ce = e;
			while (ce > i && is_blank((unsigned char)r->s[ce - 1]))
				ce--;
			bool cont = ce > i && r->s[ce - 1] == r->esc;
			size_t stop = cont ? ce - 1 : e;
			for (size_t k = i; k < stop; k++) {
				if (r->s[k] == '\0') {
					err_at(r->err, r->file, line, (int)(k - a) + 1,
					       "NUL byte in the file; a Cblockfile is text");
					*failed = true;
					return false;
				}
				ll_add(l, r->s[k], line, (int)(k - a) + 1);
			}
			if (!cont) {
				l->end_line = line;
				l->end_col = (int)(e - a) + 1;
				return true;
			}
			/* Skip comment and blank lines inside a continuation. */
			for (;;) {
				if (r->pos >= r->len) {
					l->end_line = line;
					l->end_col = (int)(e - a) + 1;
					return true;
				}
				line = r->line++;
				phys_line(r, &a, &e);
				size_t j = skip_blank_at(r->s, a, e);
				if (j < e && r->s[j] == '#')
					continue;
				if (j >= e)
					continue;
				i = a; /* keep the leading blanks, as Docker does */
				break;
			}
		}
	}
}

/* ---- raw words ---- */

/*
 * Split s[from..to) into words on blanks outside quotes. Quotes and
 * escapes stay in the words. Returns -1 with err on an unterminated quote.
 */
static int split_words(const char *file, const struct lline *l, size_t from, size_t to, char esc,
		       struct cbf_word **out, size_t *nout, struct clbsd_err *err)
{
	const char *s = l->s.data;
	struct cbf_word *w = NULL;
	size_t n = 0;
	size_t i = from;
	for (;;) {
		i = skip_blank_at(s, i, to);
		if (i >= to)
			break;
		size_t start = i;
		char q = 0;
		size_t qpos = 0;
		while (i < to) {
			char c = s[i];
			if (q == '\'') {
				if (c == '\'')
					q = 0;
				i++;
			} else if (c == esc && i + 1 < to) {
				i += 2;
			} else if (q == '"') {
				if (c == '"')
					q = 0;
				i++;
			} else if (c == '\'' || c == '"') {
				q = c;
				qpos = i;
				i++;
			} else if (is_blank((unsigned char)c)) {
				break;
			} else {
				i++;
			}
		}
		if (q) {
			int ln, cl;
			ll_pos(l, qpos, &ln, &cl);
			for (size_t k = 0; k < n; k++)
				free(w[k].raw);
			free(w);
			return err_at(err, file, ln, cl,
				      "unterminated %s quote; close it with %c on the same "
				      "logical line",
				      q == '"' ? "double" : "single", q);
		}
		w = xrealloc(w, (n + 1) * sizeof(*w));
		w[n].raw = xstrndup(s + start, i - start);
		ll_pos(l, start, &w[n].line, &w[n].col);
		w[n].off = start - from;
		n++;
	}
	*out = w;
	*nout = n;
	return 0;
}

/* ---- cooking: quotes, escapes and variables ---- */

struct vars {
	/* Looked up in env first (latest wins), then in args. */
	struct strv env_names, env_values;
	struct strv arg_names, arg_values;
};

static void vars_release(struct vars *v)
{
	strv_release(&v->env_names);
	strv_release(&v->env_values);
	strv_release(&v->arg_names);
	strv_release(&v->arg_values);
}

static const char *vars_get(const struct vars *v, const char *name, size_t nlen)
{
	for (size_t i = v->env_names.n; i-- > 0;)
		if (strlen(v->env_names.v[i]) == nlen && !strncmp(v->env_names.v[i], name, nlen))
			return v->env_values.v[i];
	for (size_t i = v->arg_names.n; i-- > 0;)
		if (strlen(v->arg_names.v[i]) == nlen && !strncmp(v->arg_names.v[i], name, nlen))
			return v->arg_values.v[i];
	return NULL;
}

static bool is_name_start(int c)
{
	return isalpha(c) || c == '_';
}

static bool is_name_char(int c)
{
	return isalnum(c) || c == '_';
}

struct cook {
	const struct vars *v; /* NULL: check syntax, keep every $ as written */
	char esc;
	const char *why; /* the error, when cooking fails */
	size_t where;    /* its offset in the input */
};

static int cook_into(struct cook *c, const char *s, size_t len, size_t base, int depth,
		     struct buf *out);

/*
 * A ${...} at s[i] (s[i] == '$', s[i+1] == '{'). Appends the expansion and
 * returns the offset just past the '}', or (size_t)-1 on error.
 */
static size_t cook_brace(struct cook *c, const char *s, size_t len, size_t i, size_t base,
			 int depth, struct buf *out)
{
	size_t start = i;
	i += 2;
	size_t n0 = i;
	if (i >= len || !is_name_start((unsigned char)s[i])) {
		c->why = "bad substitution: expected a variable name after ${";
		c->where = base + start;
		return (size_t)-1;
	}
	while (i < len && is_name_char((unsigned char)s[i]))
		i++;
	size_t nlen = i - n0;
	bool colon = false;
	char op = 0;
	if (i < len && s[i] == ':') {
		colon = true;
		i++;
	}
	if (i < len && (s[i] == '-' || s[i] == '+')) {
		op = s[i++];
	} else if (colon || (i < len && s[i] != '}')) {
		c->why = "unsupported substitution: use ${NAME}, ${NAME:-default} or "
			 "${NAME:+alternative}";
		c->where = base + start;
		return (size_t)-1;
	}
	/* The word runs to the matching '}' (nested ${...} and quotes skipped). */
	size_t w0 = i;
	int nest = 0;
	char q = 0;
	while (i < len) {
		char ch = s[i];
		if (q == '\'') {
			if (ch == '\'')
				q = 0;
		} else if (ch == c->esc && i + 1 < len) {
			i++;
		} else if (q == '"') {
			if (ch == '"')
				q = 0;
		} else if (ch == '\'' || ch == '"') {
			q = ch;
		} else if (ch == '$' && i + 1 < len && s[i + 1] == '{') {
			nest++;
			i++;
		} else if (ch == '}') {
			if (nest == 0)
				break;
			nest--;
		}
		i++;
	}
	if (i >= len) {
		c->why = "bad substitution: missing '}'";
		c->where = base + start;
		return (size_t)-1;
	}
	size_t w1 = i;
	i++; /* past '}' */
	if (!c->v) {
		if (op) {
			/* Check the word's syntax, keep the text as written. */
			struct buf scratch = BUF_INIT;
			int r = cook_into(c, s + w0, w1 - w0, base + w0, depth + 1, &scratch);
			buf_release(&scratch);
			if (r < 0)
				return (size_t)-1;
		}
		buf_add(out, s + start, i - start);
		return i;
	}
	const char *val = vars_get(c->v, s + n0, nlen);
	bool set = val != NULL;
	bool use_word;
	if (op == '-')
		use_word = colon ? (!set || !*val) : !set;
	else if (op == '+')
		use_word = colon ? (set && *val) : set;
	else
		use_word = false;
	if (use_word) {
		if (cook_into(c, s + w0, w1 - w0, base + w0, depth + 1, out) < 0)
			return (size_t)-1;
	} else if (op != '+' && val) {
		buf_adds(out, val);
	}
	return i;
}

static int cook_into(struct cook *c, const char *s, size_t len, size_t base, int depth,
		     struct buf *out)
{
	if (depth > SUBST_DEPTH_MAX) {
		c->why = "substitutions nested too deeply";
		c->where = base;
		return -1;
	}
	char q = 0;
	size_t qpos = 0;
	size_t i = 0;
	while (i < len) {
		char ch = s[i];
		if (q == '\'') {
			if (ch == '\'')
				q = 0;
			else
				buf_addc(out, ch);
			i++;
			continue;
		}
		if (ch == c->esc) {
			if (i + 1 >= len) {
				buf_addc(out, ch);
				i++;
				continue;
			}
			char nx = s[i + 1];
			/* In double quotes only \" \$ and the escape itself are escapes. */
			if (q == '"' && nx != '"' && nx != '$' && nx != c->esc)
				buf_addc(out, ch);
			buf_addc(out, nx);
			i += 2;
			continue;
		}
		if (ch == '"') {
			if (q) {
				q = 0;
			} else {
				q = '"';
				qpos = i;
			}
			i++;
			continue;
		}
		if (ch == '\'' && !q) {
			q = '\'';
			qpos = i;
			i++;
			continue;
		}
		if (ch == '$' && i + 1 < len && s[i + 1] == '{') {
			size_t ni = cook_brace(c, s, len, i, base, depth, out);
			if (ni == (size_t)-1)
				return -1;
			i = ni;
			continue;
		}
		if (ch == '$' && i + 1 < len && is_name_start((unsigned char)s[i + 1])) {
			size_t n0 = ++i;
			while (i < len && is_name_char((unsigned char)s[i]))
				i++;
			if (!c->v) {
				buf_add(out, s + n0 - 1, i - n0 + 1);
			} else {
				const char *val = vars_get(c->v, s + n0, i - n0);
				if (val)
					buf_adds(out, val);
			}
			continue;
		}
		buf_addc(out, ch);
		i++;
	}
	if (q) {
		c->why = q == '"' ? "unterminated double quote" : "unterminated single quote";
		c->where = base + qpos;
		return -1;
	}
	return 0;
}

/* Where a cooking error points: the word's position plus the offset when on its line. */
struct site {
	const char *file;
	int line, col;
};

static int cook_str(const struct site *at, const struct vars *v, char esc, const char *s,
		    size_t len, char **out, struct clbsd_err *err)
{
	struct cook c = {.v = v, .esc = esc};
	struct buf b = BUF_INIT;
	if (cook_into(&c, s, len, 0, 0, &b) < 0) {
		buf_release(&b);
		/* Words never span lines after joining; the offset is a column offset. */
		return err_at(err, at->file, at->line, at->col + (int)c.where, "%s", c.why);
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

static int cook_word(const char *file, const struct cbf_word *w, const struct vars *v, char esc,
		     char **out, struct clbsd_err *err)
{
	struct site at = {file, w->line, w->col};
	return cook_str(&at, v, esc, w->raw, strlen(w->raw), out, err);
}

/* ---- JSON arrays of strings (exec form) ---- */

static size_t json_ws(const char *s, size_t i, size_t end)
{
	while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hex4(const char *s, size_t i, size_t end, unsigned *out)
{
	if (i + 4 > end)
		return false;
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval((unsigned char)s[i + k]);
		if (h < 0)
			return false;
		v = v * 16 + (unsigned)h;
	}
	*out = v;
	return true;
}

static void put_utf8(struct buf *b, unsigned cp)
{
	if (cp < 0x80) {
		buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		buf_addc(b, (char)(0xc0 | (cp >> 6)));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_addc(b, (char)(0xe0 | (cp >> 12)));
		buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_addc(b, (char)(0xf0 | (cp >> 18)));
		buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/*
 * Parse l->s[from..to) as a JSON array of strings. The caller checked that
 * it starts with '['. A malformed array is an error (Docker would quietly
 * run it as a shell command, which is never what was meant).
 */
static int parse_json_array(const char *file, const struct lline *l, size_t from, size_t to,
			    char ***out, struct clbsd_err *err)
{
	const char *s = l->s.data;
	struct strv v = STRV_INIT;
	struct buf b = BUF_INIT;
	const char *why = NULL;
	size_t i = json_ws(s, from + 1, to);
	bool first = true;
	for (;;) {
		if (i < to && s[i] == ']' && first) {
			i++;
			break;
		}
		if (i >= to || s[i] != '"') {
			why = first ? "expected a string or ']'" : "expected a string";
			goto bad;
		}
		i++;
		buf_reset(&b);
		for (;;) {
			if (i >= to) {
				why = "unterminated string";
				goto bad;
			}
			unsigned char ch = (unsigned char)s[i];
			if (ch == '"') {
				i++;
				break;
			}
			if (ch < 0x20) {
				why = "control character in a string; write it as \\n, \\t or \\u00XX";
				goto bad;
			}
			if (ch != '\\') {
				buf_addc(&b, (char)ch);
				i++;
				continue;
			}
			if (i + 1 >= to) {
				why = "unterminated string";
				goto bad;
			}
			char e = s[i + 1];
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e && simple) {
				static const char map[] = "\"\\/\b\f\n\r\t";
				buf_addc(&b, map[simple - "\"\\/bfnrt"]);
				i += 2;
				continue;
			}
			if (e != 'u') {
				why = "bad escape in a string; JSON knows \\\" \\\\ \\/ \\b \\f \\n \\r "
				      "\\t \\uXXXX";
				goto bad;
			}
			unsigned cp;
			if (!hex4(s, i + 2, to, &cp)) {
				why = "bad \\u escape: expected four hex digits";
				goto bad;
			}
			i += 6;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (i + 1 < to && s[i] == '\\' && s[i + 1] == 'u' &&
				    hex4(s, i + 2, to, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				} else {
					why = "lone UTF-16 surrogate in a \\u escape";
					goto bad;
				}
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				why = "lone UTF-16 surrogate in a \\u escape";
				goto bad;
			}
			if (cp == 0) {
				why = "\\u0000 cannot be passed in an argument";
				goto bad;
			}
			put_utf8(&b, cp);
		}
		strv_push(&v, b.data ? b.data : "");
		first = false;
		i = json_ws(s, i, to);
		if (i < to && s[i] == ',') {
			i = json_ws(s, i + 1, to);
			continue;
		}
		if (i < to && s[i] == ']') {
			i++;
			break;
		}
		why = "expected ',' or ']'";
		goto bad;
	}
	i = json_ws(s, i, to);
	if (i < to) {
		why = "text after the closing ']'";
		goto bad;
	}
	buf_release(&b);
	if (!v.v)
		v.v = xcalloc(1, sizeof(char *));
	*out = v.v;
	return 0;
bad:;
	int ln, cl;
	ll_pos(l, i, &ln, &cl);
	buf_release(&b);
	strv_release(&v);
	return err_at(err, file, ln, cl, "bad JSON array: %s", why);
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
	static const char *const exts[] = {".tar",    ".tar.gz", ".tgz",  ".tar.xz",
					   ".txz",    ".tar.bz2", ".tbz2", ".tbz",
					   ".tar.zst", ".tzst"};
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
	size_t stage;             /* the stage being read */
	const struct vars *v;     /* NULL while reading */
};

/* Whether a value still holds an unsubstituted variable (checked after expansion). */
static bool has_var(const char *s)
{
	return strchr(s, '$') != NULL;
}

static bool valid_var_name(const char *s)
{
	if (!is_name_start((unsigned char)*s))
		return false;
	for (const char *p = s; *p; p++)
		if (!is_name_char((unsigned char)*p))
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
	struct site at;
	long eq0 = raw_eq(in->words[0].raw, c->esc);
	if (eq0 < 0) {
		/* Legacy: the rest of the line is the value. */
		struct cbf_kv kv = {0};
		if (cook_word(c->file, &in->words[0], c->v, c->esc, &kv.key, err) < 0)
			return -1;
		size_t vw = 1;
		if (in->nwords >= 2 && strcmp(in->words[1].raw, "=") == 0)
			vw = 2; /* cblocks writes ENV KEY = "value" */
		if (in->nwords <= vw && vw == 1) {
			free(kv.key);
			return err_at(err, c->file, in->words[0].line, in->words[0].col,
				      "%s %s needs a value: write %s NAME=value",
				      cbf_kind_name(in->kind), in->words[0].raw,
				      cbf_kind_name(in->kind));
		}
		if (in->nwords > vw) {
			const struct cbf_word *w = &in->words[vw];
			at = (struct site){c->file, w->line, w->col};
			if (cook_str(&at, c->v, c->esc, in->rest + w->off, strlen(in->rest + w->off),
				     &kv.value, err) < 0) {
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
				return err_at(err, c->file, w->line, w->col,
					      "expected NAME=value, got \"%s\" (quote a value "
					      "that holds blanks)",
					      w->raw);
			at = (struct site){c->file, w->line, w->col};
			char *key, *val;
			if (cook_str(&at, c->v, c->esc, w->raw, (size_t)eq, &key, err) < 0)
				return -1;
			at.col += (int)eq + 1;
			if (cook_str(&at, c->v, c->esc, w->raw + eq + 1, strlen(w->raw + eq + 1),
				     &val, err) < 0) {
				free(key);
				return -1;
			}
			in->kv[in->nkv++] = (struct cbf_kv){key, val};
		}
	}
	for (size_t i = 0; i < in->nkv; i++) {
		if (!in->kv[i].key[0] || strchr(in->kv[i].key, '='))
			return err_at(err, c->file, in->words[0].line, in->words[0].col,
				      "%s: a name must not be empty or hold '='",
				      cbf_kind_name(in->kind));
		if (in->kind == CBF_ENV && has_blank_or_ctl(in->kv[i].key))
			return err_at(err, c->file, in->words[0].line, in->words[0].col,
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
		if (cook_word(c->file, w, c->v, c->esc, &s, err) < 0)
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
				err_at(err, c->file, w->line, w->col,
				       "EXPOSE: protocol \"%s\" is not tcp, udp or sctp", proto);
				goto fail;
			}
		}
		long long lo, hi;
		char *dash = strchr(s, '-');
		if (dash)
			*dash = '\0';
		if (parse_int(s, 1, 65535, &lo) < 0 ||
		    (dash && (parse_int(dash + 1, 1, 65535, &hi) < 0 || hi < lo))) {
			err_at(err, c->file, w->line, w->col,
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
static int cook_whole(const struct ctx *c, struct cbf_instr *in, char **out,
		      struct clbsd_err *err)
{
	struct site at = {c->file, in->rest_line, in->rest_col};
	return cook_str(&at, c->v, c->esc, in->rest, strlen(in->rest), out, err);
}

static bool chars_in(const char *s, const char *extra)
{
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
			return false;
	return true;
}

/* Check a single value once it no longer holds variables. */
static int check_value(const struct ctx *c, const struct cbf_instr *in, const char *s,
		       struct clbsd_err *err)
{
	const char *what = cbf_kind_name(in->kind);
	int line = in->rest_line, col = in->rest_col;
	if (!c->v && has_var(s))
		return 0;
	if (!*s)
		return err_at(err, c->file, line, col, "%s: the value is empty", what);
	switch (in->kind) {
	case CBF_WORKDIR:
		if (strchr(s, '\n'))
			return err_at(err, c->file, line, col, "WORKDIR: a path has no newline");
		return 0;
	case CBF_ROOTPIVOT:
		if (!fs_path_is_clean_abs(s) || strcmp(s, "/") == 0)
			return err_at(err, c->file, line, col,
				      "ROOTPIVOT: \"%s\" must be an absolute directory below / "
				      "without . or .. (like /new)",
				      s);
		return 0;
	case CBF_USER: {
		const char *colon = strchr(s, ':');
		if (has_blank_or_ctl(s) || s[0] == ':' || (colon && (!colon[1] || strchr(colon + 1, ':'))))
			return err_at(err, c->file, line, col,
				      "USER: \"%s\" is not USER[:GROUP] (names or numeric ids)", s);
		return 0;
	}
	case CBF_OSRELEASE:
		if (strlen(s) > 32 || !chars_in(s, "._+-"))
			return err_at(err, c->file, line, col,
				      "OSRELEASE: \"%s\" is not a release name like 14.3-RELEASE "
				      "(letters, digits and . _ + -, at most 32)",
				      s);
		return 0;
	case CBF_AUDITCFG:
		if (strlen(s) > 256 || !chars_in(s, ",_^+-"))
			return err_at(err, c->file, line, col,
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
		if (cook_word(c->file, &in->words[i], c->v, c->esc, &s, err) < 0) {
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
		return err_at(err, c->file, in->rest_line, in->rest_col,
			      "%s needs a source and a destination: %s SRC... DEST", what, what);
	for (size_t i = 0; i < n; i++)
		if (!in->argv[i][0])
			return err_at(err, c->file, in->rest_line, in->rest_col,
				      "%s: an empty path", what);
	const char *dest = in->argv[n - 1];
	if (n > 2 && dest[strlen(dest) - 1] != '/' && !(c->v == NULL && has_var(dest)))
		return err_at(err, c->file, in->rest_line, in->rest_col,
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
				return err_at(err, c->file, w->line, w->col,
					      "ARG: \"%s\" is not a name (letters, digits and _, "
					      "not starting with a digit)",
					      kv.key);
			if (eq >= 0) {
				struct site at = {c->file, w->line, w->col + (int)eq + 1};
				if (cook_str(&at, c->v, c->esc, w->raw + eq + 1,
					     strlen(w->raw + eq + 1), &in->kv[i].value, err) < 0)
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
			return 0;
		/* fall through: words, like COPY */
		{
			struct strv v = STRV_INIT;
			for (size_t i = 0; i < in->nwords; i++) {
				char *s;
				if (cook_word(c->file, &in->words[i], c->v, c->esc, &s, err) < 0) {
					strv_release(&v);
					return -1;
				}
				strv_push_owned(&v, s);
			}
			strv_free(in->argv);
			in->argv = v.v;
		}
		return 0;
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
	/* Bound the text so the arithmetic of parse_duration() cannot overflow. */
	struct clbsd_err e2;
	int64_t ns;
	bool ok = strlen(val) <= 12 && parse_duration(val, &ns, &e2) == 0 && ns >= 0;
	for (const char *p = val; ok && *p; p++)
		if (*p == 'e' || *p == 'E')
			ok = false;
	if (!ok)
		return err_at(err, c->file, w->line, w->col,
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
			struct site at = {c->file, w->line, w->col + (int)(eq - w->raw) + 1};
			if (cook_str(&at, NULL, c->esc, eq + 1, strlen(eq + 1), &val, err) < 0)
				return -1;
		}
#define IS(f) (nlen == strlen(f) && strncasecmp(name, f, nlen) == 0)
		bool copyadd = in->kind == CBF_COPY || in->kind == CBF_ADD;
		bool hc = in->kind == CBF_HEALTHCHECK;
		if (!val)
			return err_at(err, c->file, w->line, w->col,
				      "%s: flag %s needs a value: --%.*s=VALUE",
				      cbf_kind_name(in->kind), w->raw, (int)nlen, name);
		if (in->kind == CBF_COPY && IS("from")) {
			int idx = cbf_stage_find(c->f, val);
			if (idx < 0 || (size_t)idx >= c->stage)
				return err_at(err, c->file, w->line, w->col,
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
				return err_at(err, c->file, w->line, w->col,
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
				return err_at(err, c->file, w->line, w->col,
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
				return err_at(err, c->file, w->line, w->col,
					      "HEALTHCHECK --retries=%s: expected a count", val);
			in->health.retries = (int)r;
		} else {
			return err_at(err, c->file, w->line, w->col,
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
static int parse_command(const struct ctx *c, const struct lline *l, size_t from, size_t to,
			 struct cbf_instr *in, bool exec_only, struct clbsd_err *err)
{
	if (from < to && l->s.data[from] == '[') {
		if (parse_json_array(c->file, l, from, to, &in->argv, err) < 0)
			return -1;
		in->exec_form = true;
		if (in->kind == CBF_SHELL && !in->argv[0]) {
			int ln, cl;
			ll_pos(l, from, &ln, &cl);
			return err_at(err, c->file, ln, cl,
				      "SHELL needs at least the shell: SHELL [\"/bin/sh\", \"-c\"]");
		}
		return 0;
	}
	if (exec_only) {
		int ln, cl;
		ll_pos(l, from, &ln, &cl);
		return err_at(err, c->file, ln, cl,
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

static int read_instr(struct ctx *c, const struct lline *l, enum cbf_kind kind, size_t kwstart,
		      size_t p, struct cbf_instr *in, struct clbsd_err *err)
{
	const char *s = l->s.data;
	size_t n = l->s.len;
	memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->from_stage = -1;
	ll_pos(l, kwstart, &in->line, &in->col);

	/* Flags: "--name=value" words right after the keyword. */
	while (takes_flags(kind) && p + 1 < n && s[p] == '-' && s[p + 1] == '-') {
		size_t e = p;
		while (e < n && !is_blank((unsigned char)s[e]))
			e++;
		struct cbf_word w = {xstrndup(s + p, e - p), 0, 0, 0};
		ll_pos(l, p, &w.line, &w.col);
		p = skip_blank_at(s, e, n);
		if (kind == CBF_COPY && !strchr(w.raw, '=') && strcasecmp(w.raw, "--from") == 0) {
			/* cblocks: COPY --FROM STAGE SRC DEST */
			size_t ve = p;
			while (ve < n && !is_blank((unsigned char)s[ve]))
				ve++;
			char *joined = xasprintf("--from=%.*s", (int)(ve - p), s + p);
			free(w.raw);
			w.raw = joined;
			p = skip_blank_at(s, ve, n);
		}
		in->flags = xrealloc(in->flags, (in->nflags + 1) * sizeof(*in->flags));
		in->flags[in->nflags++] = w;
	}
	size_t end = n;
	while (end > p && is_blank((unsigned char)s[end - 1]))
		end--;
	in->rest = xstrndup(s + p, end - p);
	ll_pos(l, p, &in->rest_line, &in->rest_col);
	if (p >= end) {
		int ln, cl;
		ll_pos(l, kwstart, &ln, &cl);
		return err_at(err, c->file, ln, cl, "%s needs an argument (see docs/cblockfile.md)",
			      cbf_kind_name(kind));
	}
	if (apply_flags(c, in, err) < 0)
		return -1;

	switch (kind) {
	case CBF_RUN:
	case CBF_CMD:
	case CBF_ENTRYPOINT:
		return parse_command(c, l, p, end, in, false, err);
	case CBF_SHELL:
		return parse_command(c, l, p, end, in, true, err);
	case CBF_HEALTHCHECK: {
		size_t we = p;
		while (we < end && !is_blank((unsigned char)s[we]))
			we++;
		if (we - p == 4 && strncasecmp(s + p, "NONE", 4) == 0) {
			if (we != end || in->nflags) {
				int ln, cl;
				ll_pos(l, p, &ln, &cl);
				return err_at(err, c->file, ln, cl,
					      "HEALTHCHECK NONE takes no flags or arguments");
			}
			in->health.none = true;
			return 0;
		}
		if (!(we - p == 3 && strncasecmp(s + p, "CMD", 3) == 0)) {
			int ln, cl;
			ll_pos(l, p, &ln, &cl);
			return err_at(err, c->file, ln, cl,
				      "HEALTHCHECK expects CMD COMMAND or NONE, like HEALTHCHECK "
				      "--interval=30s CMD wget -q -O- http://localhost/");
		}
		size_t cs = skip_blank_at(s, we, end);
		if (cs >= end) {
			int ln, cl;
			ll_pos(l, we, &ln, &cl);
			return err_at(err, c->file, ln, cl, "HEALTHCHECK CMD needs a command");
		}
		return parse_command(c, l, cs, end, in, false, err);
	}
	case CBF_COPY:
	case CBF_ADD:
	case CBF_VOLUME:
		if (s[p] == '[') {
			if (parse_json_array(c->file, l, p, end, &in->argv, err) < 0)
				return -1;
			in->exec_form = true;
			if (kind == CBF_VOLUME) {
				if (!in->argv[0])
					return err_at(err, c->file, in->rest_line, in->rest_col,
						      "VOLUME needs at least one path");
				return 0;
			}
			return check_copy(c, in, err);
		}
		break;
	default:
		break;
	}
	if (split_words(c->file, l, p, end, c->esc, &in->words, &in->nwords, err) < 0)
		return -1;
	return cook_instr(c, in, err);
}

static bool valid_stage_name(const char *s)
{
	if (!isalpha((unsigned char)s[0]) || strlen(s) > 128)
		return false;
	return chars_in(s, "_.-");
}

static int read_from(struct ctx *c, struct cbf_file *f, const struct lline *l, size_t kwstart,
		     size_t p, struct clbsd_err *err)
{
	struct cbf_stage st = {.base_stage = -1};
	ll_pos(l, kwstart, &st.line, &st.col);
	struct cbf_word *w = NULL;
	size_t nw = 0;
	if (split_words(c->file, l, p, l->s.len, c->esc, &w, &nw, err) < 0)
		return -1;
	int r = -1;
	if (nw > 0 && strncmp(w[0].raw, "--", 2) == 0) {
		err_at(err, c->file, w[0].line, w[0].col, "FROM does not take the flag %s",
		       w[0].raw);
		goto out;
	}
	if (nw != 1 && !(nw == 3 && strcasecmp(w[1].raw, "AS") == 0)) {
		int ln = st.line, cl = st.col;
		if (nw > 1) {
			ln = w[1].line;
			cl = w[1].col;
		}
		err_at(err, c->file, ln, cl,
		       nw == 0 ? "FROM needs an image: FROM IMAGE [AS NAME] (or FROM scratch)"
			       : "expected FROM IMAGE [AS NAME]");
		goto out;
	}
	if (nw == 3) {
		if (!valid_stage_name(w[2].raw)) {
			err_at(err, c->file, w[2].line, w[2].col,
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
				err_at(err, c->file, w[2].line, w[2].col,
				       "stage name \"%s\" is already used by the stage at line %d",
				       st.name, f->stages[i].line);
				goto out;
			}
	}
	if (cook_word(c->file, &w[0], NULL, c->esc, &st.base, err) < 0)
		goto out;
	if (!*st.base) {
		err_at(err, c->file, w[0].line, w[0].col, "FROM: the image is empty");
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

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len;
	unsigned cp;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * The text must be UTF-8: its values end up in config.json, and JSON has
 * no way to carry other bytes.
 */
static int check_utf8(const char *file, const char *text, size_t len, struct clbsd_err *err)
{
	int line = 1, col = 1;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len((const unsigned char *)text + i, len - i);
		if (n == 0)
			return err_at(err, file, line, col,
				      "byte 0x%02x is not UTF-8; save the file as UTF-8",
				      (unsigned char)text[i]);
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col += (int)n; /* columns count bytes, as everywhere in the reader */
		}
		i += n;
	}
	return 0;
}

int cbf_read(const char *file, const char *text, size_t len, struct cbf_file **out,
	     struct clbsd_err *err)
{
	const char *fname = file ? file : "Cblockfile";
	if (len > CBF_MAX_SIZE)
		return err_at(err, fname, 1, 1, "the file is %zu bytes; at most %d are read", len,
			      CBF_MAX_SIZE);
	if (check_utf8(fname, text, len, err) < 0)
		return -err->code;
	struct reader r = {.file = fname, .s = text, .len = len, .line = 1, .esc = '\\', .err = err};
	read_directives(&r);
	struct cbf_file *f = xcalloc(1, sizeof(*f));
	f->file = xstrdup(fname);
	f->escape = r.esc;
	struct ctx c = {.file = f->file, .esc = r.esc, .f = f};
	struct lline l = {.s = BUF_INIT};
	bool failed = false;
	while (next_lline(&r, &l, &failed)) {
		const char *s = l.s.data;
		size_t n = l.s.len;
		size_t k0 = skip_blank_at(s, 0, n);
		size_t k = k0;
		while (k < n && isalpha((unsigned char)s[k]))
			k++;
		int ln, cl;
		ll_pos(&l, k0, &ln, &cl);
		if (k == k0 || (k < n && !is_blank((unsigned char)s[k]))) {
			size_t e = k;
			while (e < n && !is_blank((unsigned char)s[e]) && e - k0 < 40)
				e++;
			err_at(err, f->file, ln, cl,
			       "expected an instruction (FROM, RUN, COPY, ...), got \"%.*s\"",
			       (int)(e - k0), s + k0);
			goto fail;
		}
		size_t p = skip_blank_at(s, k, n);
		if (k - k0 == 4 && strncasecmp(s + k0, "FROM", 4) == 0) {
			if (p >= n) {
				err_at(err, f->file, ln, cl,
				       "FROM needs an image: FROM IMAGE [AS NAME] (or FROM scratch)");
				goto fail;
			}
			if (read_from(&c, f, &l, k0, p, err) < 0)
				goto fail;
			continue;
		}
		int kind = lookup_kind(s + k0, k - k0);
		if (kind < 0) {
			err_at(err, f->file, ln, cl,
			       "unknown instruction \"%.*s\" (see docs/cblockfile.md for the list)",
			       (int)(k - k0 > 40 ? 40 : k - k0), s + k0);
			goto fail;
		}
		struct cbf_instr in;
		if (f->nstages == 0) {
			if (kind != CBF_ARG) {
				err_at(err, f->file, ln, cl,
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
					err_at(err, f->file, in.line, in.col,
					       "%s is given twice in this stage (first at line %d)",
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
		err_at(err, f->file, r.line > 1 ? r.line - 1 : 1, 1,
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
static int expand_args(struct ctx *c, struct cbf_instr *in, struct vars *v, const struct vars *global,
		       char *const *build_args, struct clbsd_err *err)
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
			struct site at = {c->file, w->line, w->col + (int)eq + 1};
			if (cook_str(&at, v, c->esc, w->raw + eq + 1, strlen(w->raw + eq + 1), &val,
				     err) < 0)
				return -1;
		} else if (global) {
			const char *g = vars_get(global, kv->key, strlen(kv->key));
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

static void env_from_list(struct vars *v, char *const *env)
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
	struct vars global = {0};
	int r = -1;
	/* Per stage, the ENV it ends with, for stages built FROM it. */
	struct vars *ends = xcalloc(f->nstages ? f->nstages : 1, sizeof(*ends));
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
		if (cook_word(f->file, &st->base_word, &global, f->escape, &base, err) < 0)
			goto out;
		if (!*base) {
			free(base);
			err_at(err, f->file, st->line, st->col,
			       "FROM %s: the image is empty after substitution (pass --build-arg?)",
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
		struct vars *v = &ends[s];
		if (st->base_kind == CBF_BASE_STAGE) {
			const struct vars *b = &ends[st->base_stage];
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
		vars_release(&ends[s]);
	free(ends);
	vars_release(&global);
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
