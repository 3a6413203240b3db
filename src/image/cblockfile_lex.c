/*
 * The Cblockfile lexer: physical lines joined into logical lines (with the
 * position of every byte), words split on blanks outside quotes, cooking
 * (quotes, escapes, ${...} substitution) and JSON arrays of strings. The
 * grammar is in cblockfile.c.
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

int cbf_err_at(struct clbsd_err *err, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s:%d:%d: %s", file, line, col, msg);
}

/* ---- logical lines ---- */

static void ll_add(struct cbf_lline *l, char c, int line, int col)
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

void cbf_ll_pos(const struct cbf_lline *l, size_t i, int *line, int *col)
{
	if (i < l->s.len) {
		*line = l->ln[i];
		*col = l->cl[i];
	} else {
		*line = l->end_line;
		*col = l->end_col;
	}
}

bool cbf_is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The physical line at r->pos: [start, end) without "\r\n". Advances past it. */
static void phys_line(struct cbf_reader *r, size_t *start, size_t *end)
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

size_t cbf_skip_blank(const char *s, size_t i, size_t end)
{
	while (i < end && cbf_is_blank((unsigned char)s[i]))
		i++;
	return i;
}

/*
 * Parser directives: "# escape=`" lines at the very top. Only escape is
 * understood; other directives ("# syntax=") are ignored, and the first
 * line that is not a directive ends them.
 */
void cbf_read_directives(struct cbf_reader *r)
{
	while (r->pos < r->len) {
		size_t save = r->pos;
		int save_line = r->line;
		size_t a, e;
		phys_line(r, &a, &e);
		size_t i = cbf_skip_blank(r->s, a, e);
		if (i >= e || r->s[i] != '#')
			goto stop;
		i = cbf_skip_blank(r->s, i + 1, e);
		size_t k = i;
		while (k < e && (isalpha((unsigned char)r->s[k])))
			k++;
		if (k == i)
			goto stop;
		size_t eq = cbf_skip_blank(r->s, k, e);
		if (eq >= e || r->s[eq] != '=')
			goto stop;
		size_t v = cbf_skip_blank(r->s, eq + 1, e);
		size_t ve = e;
		while (ve > v && cbf_is_blank((unsigned char)r->s[ve - 1]))
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
bool cbf_next_lline(struct cbf_reader *r, struct cbf_lline *l, bool *failed)
{
	buf_reset(&l->s);
	for (;;) {
		if (r->pos >= r->len)
			return false;
		size_t a, e;
		int line = r->line++;
		phys_line(r, &a, &e);
		size_t i = cbf_skip_blank(r->s, a, e);
		if (i >= e || r->s[i] == '#')
			continue;
		/* An instruction starts here; join its continuations. */
		for (;;) {
			size_t ce = e;
			while (ce > i && cbf_is_blank((unsigned char)r->s[ce - 1]))
				ce--;
			bool cont = ce > i && r->s[ce - 1] == r->esc;
			size_t stop = cont ? ce - 1 : e;
			for (size_t k = i; k < stop; k++) {
				if (r->s[k] == '\0') {
					cbf_err_at(r->err, r->file, line, (int)(k - a) + 1,
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
				size_t j = cbf_skip_blank(r->s, a, e);
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
int cbf_split_words(const char *file, const struct cbf_lline *l, size_t from, size_t to, char esc,
		    struct cbf_word **out, size_t *nout, struct clbsd_err *err)
{
	const char *s = l->s.data;
	struct cbf_word *w = NULL;
	size_t n = 0;
	size_t i = from;
	for (;;) {
		i = cbf_skip_blank(s, i, to);
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
			} else if (cbf_is_blank((unsigned char)c)) {
				break;
			} else {
				i++;
			}
		}
		if (q) {
			int ln, cl;
			cbf_ll_pos(l, qpos, &ln, &cl);
			for (size_t k = 0; k < n; k++)
				free(w[k].raw);
			free(w);
			return cbf_err_at(err, file, ln, cl,
					  "unterminated %s quote; close it with %c on the same "
					  "logical line",
					  q == '"' ? "double" : "single", q);
		}
		w = xrealloc(w, (n + 1) * sizeof(*w));
		w[n].raw = xstrndup(s + start, i - start);
		cbf_ll_pos(l, start, &w[n].line, &w[n].col);
		w[n].off = start - from;
		n++;
	}
	*out = w;
	*nout = n;
	return 0;
}

/* ---- cooking: quotes, escapes and variables ---- */

void cbf_vars_release(struct cbf_vars *v)
{
	strv_release(&v->env_names);
	strv_release(&v->env_values);
	strv_release(&v->arg_names);
	strv_release(&v->arg_values);
}

const char *cbf_vars_get(const struct cbf_vars *v, const char *name, size_t nlen)
{
	for (size_t i = v->env_names.n; i-- > 0;)
		if (strlen(v->env_names.v[i]) == nlen && !strncmp(v->env_names.v[i], name, nlen))
			return v->env_values.v[i];
	for (size_t i = v->arg_names.n; i-- > 0;)
		if (strlen(v->arg_names.v[i]) == nlen && !strncmp(v->arg_names.v[i], name, nlen))
			return v->arg_values.v[i];
	return NULL;
}

bool cbf_is_name_start(int c)
{
	return isalpha(c) || c == '_';
}

bool cbf_is_name_char(int c)
{
	return isalnum(c) || c == '_';
}

struct cook {
	const struct cbf_vars *v; /* NULL: check syntax, keep every $ as written */
	char esc;
	const char *why; /* the error, when cooking fails */
	size_t where;	 /* its offset in the input */
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
	if (i >= len || !cbf_is_name_start((unsigned char)s[i])) {
		c->why = "bad substitution: expected a variable name after ${";
		c->where = base + start;
		return (size_t)-1;
	}
	while (i < len && cbf_is_name_char((unsigned char)s[i]))
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
	const char *val = cbf_vars_get(c->v, s + n0, nlen);
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
		if (ch == '$' && i + 1 < len && cbf_is_name_start((unsigned char)s[i + 1])) {
			size_t n0 = ++i;
			while (i < len && cbf_is_name_char((unsigned char)s[i]))
				i++;
			if (!c->v) {
				buf_add(out, s + n0 - 1, i - n0 + 1);
			} else {
				const char *val = cbf_vars_get(c->v, s + n0, i - n0);
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

int cbf_cook_str(const struct cbf_site *at, const struct cbf_vars *v, char esc, const char *s,
		 size_t len, char **out, struct clbsd_err *err)
{
	struct cook c = {.v = v, .esc = esc};
	struct buf b = BUF_INIT;
	if (cook_into(&c, s, len, 0, 0, &b) < 0) {
		buf_release(&b);
		/* Words never span lines after joining; the offset is a column offset. */
		return cbf_err_at(err, at->file, at->line, at->col + (int)c.where, "%s", c.why);
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

int cbf_cook_word(const char *file, const struct cbf_word *w, const struct cbf_vars *v, char esc,
		  char **out, struct clbsd_err *err)
{
	struct cbf_site at = {file, w->line, w->col};
	return cbf_cook_str(&at, v, esc, w->raw, strlen(w->raw), out, err);
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
int cbf_parse_json_array(const char *file, const struct cbf_lline *l, size_t from, size_t to,
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
				why = "control character in a string; write it as \\n, \\t or "
				      "\\u00XX";
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
				why = "bad escape in a string; JSON knows \\\" \\\\ \\/ \\b \\f "
				      "\\n \\r "
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
	cbf_ll_pos(l, i, &ln, &cl);
	buf_release(&b);
	strv_release(&v);
	return cbf_err_at(err, file, ln, cl, "bad JSON array: %s", why);
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
int cbf_check_utf8(const char *file, const char *text, size_t len, struct clbsd_err *err)
{
	int line = 1, col = 1;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len((const unsigned char *)text + i, len - i);
		if (n == 0)
			return cbf_err_at(err, file, line, col,
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
