/*
 * The s-expression reader and printer.
 *
 * The language is the subset of Lisp syntax that Emacs Lisp and Common Lisp
 * both read with `read`: lists, dotted pairs, strings, integers, floats,
 * symbols, keywords, `;` line comments and nestable `#| ... |#` block
 * comments. Anything else (quote, backquote, vectors, `#` syntax, `|sym|`)
 * is refused with its position rather than guessed at.
 *
 * The reader is recursive descent with an explicit depth limit, so the
 * stack use is bounded whatever the input.
 */
#include "conf/conf.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct reader {
	const char *file;
	const char *s;
	size_t len, pos;
	int line, col;
	struct conf_diags *diags;
	bool failed;
};

static void fail(struct reader *r, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct reader *r, int line, int col, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = true;
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	conf_diags_add(r->diags, r->file, line, col, "%s", msg);
}

static int peek(const struct reader *r)
{
	return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

static int peek2(const struct reader *r)
{
	return r->pos + 1 < r->len ? (unsigned char)r->s[r->pos + 1] : -1;
}

static void advance(struct reader *r)
{
	if (r->pos >= r->len)
		return;
	if (r->s[r->pos] == '\n') {
		r->line++;
		r->col = 1;
	} else {
		r->col++;
	}
	r->pos++;
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Characters a symbol, keyword or number is made of. */
static bool is_constituent(int c)
{
	if (c >= 'a' && c <= 'z')
		return true;
	if (c >= 'A' && c <= 'Z')
		return true;
	if (c >= '0' && c <= '9')
		return true;
	return c > 0 && strchr("-_+*/<=>!?.%&$^~@:", c) != NULL;
}

/* Skip blanks and comments. Returns false after an error. */
static bool skip_blank(struct reader *r)
{
	for (;;) {
		int c = peek(r);
		if (is_space(c)) {
			advance(r);
		} else if (c == ';') {
			while (peek(r) != -1 && peek(r) != '\n')
				advance(r);
		} else if (c == '#' && peek2(r) == '|') {
			int sl = r->line, sc = r->col, depth = 0;
			do {
				if (peek(r) == -1) {
					fail(r, sl, sc,
					     "unterminated block comment started at %d:%d; "
					     "expected "
					     "'|#'",
					     sl, sc);
					return false;
				}
				if (peek(r) == '#' && peek2(r) == '|') {
					depth++;
					advance(r);
				} else if (peek(r) == '|' && peek2(r) == '#') {
					depth--;
					advance(r);
				}
				advance(r);
			} while (depth > 0);
		} else {
			return true;
		}
	}
}

static struct sexp *node(struct reader *r, enum sexp_type t, int line, int col)
{
	struct sexp *x = xcalloc(1, sizeof(*x));
	x->type = t;
	x->file = r->file;
	x->line = line;
	x->col = col;
	return x;
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

static struct sexp *read_string(struct reader *r)
{
	int sl = r->line, sc = r->col;
	advance(r); /* the opening quote */
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (;;) {
		int c = peek(r);
		if (c == -1) {
			fail(r, sl, sc, "unterminated string started at %d:%d; expected '\"'", sl,
			     sc);
			goto bad;
		}
		if (c == '"') {
			advance(r);
			break;
		}
		if (c == 0) {
			fail(r, r->line, r->col, "NUL byte in a string");
			goto bad;
		}
		if (c != '\\') {
			buf_addc(&b, (char)c);
			advance(r);
			continue;
		}
		int el = r->line, ec = r->col;
		advance(r);
		c = peek(r);
		switch (c) {
		case '"':
		case '\\':
			buf_addc(&b, (char)c);
			break;
		case 'n':
			buf_addc(&b, '\n');
			break;
		case 't':
			buf_addc(&b, '\t');
			break;
		case 'r':
			buf_addc(&b, '\r');
			break;
		case 'e':
			buf_addc(&b, '\033');
			break;
		case 'x': {
			int h1 = hexval(peek2(r));
			int h2 = r->pos + 2 < r->len ? hexval((unsigned char)r->s[r->pos + 2]) : -1;
			if (h1 < 0 || h2 < 0) {
				fail(r, el, ec,
				     "invalid escape in string: expected two hex digits after "
				     "'\\x'");
				goto bad;
			}
			if (h1 == 0 && h2 == 0) {
				fail(r, el, ec,
				     "invalid escape in string: \\x00 (NUL is not allowed)");
				goto bad;
			}
			buf_addc(&b, (char)(h1 * 16 + h2));
			advance(r);
			advance(r);
			break;
		}
		case -1:
			fail(r, sl, sc, "unterminated string started at %d:%d; expected '\"'", sl,
			     sc);
			goto bad;
		default:
			if (c >= 0x21 && c < 0x7f)
				fail(r, el, ec,
				     "unknown escape '\\%c' in string; expected one of \\\" \\\\ "
				     "\\n "
				     "\\t \\r \\e \\xHH",
				     c);
			else
				fail(r, el, ec,
				     "unknown escape in string; expected one of \\\" \\\\ \\n \\t "
				     "\\r "
				     "\\e \\xHH");
			goto bad;
		}
		advance(r);
	}
	struct sexp *x = node(r, SEXP_STRING, sl, sc);
	x->str = buf_detach(&b, &x->len);
	return x;
bad:
	buf_release(&b);
	return NULL;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* [+-]?digits, optionally followed by one '.' (Lisp reads "1." as an integer). */
static bool is_int_token(const char *t, size_t n)
{
	if (n && (t[0] == '+' || t[0] == '-'))
		t++, n--;
	if (n && t[n - 1] == '.')
		n--;
	return all_digits(t, n);
}

/* [+-]? (digits.digits | digits[.digits] exponent | .digits[exponent]) */
static bool is_float_token(const char *t, size_t n)
{
	size_t i = 0;
	if (i < n && (t[i] == '+' || t[i] == '-'))
		i++;
	size_t int_digits = 0, frac_digits = 0;
	while (i < n && t[i] >= '0' && t[i] <= '9')
		i++, int_digits++;
	bool dot = false;
	if (i < n && t[i] == '.') {
		dot = true;
		i++;
		while (i < n && t[i] >= '0' && t[i] <= '9')
			i++, frac_digits++;
	}
	if (int_digits + frac_digits == 0)
		return false;
	bool exp = false;
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		i++;
		if (i < n && (t[i] == '+' || t[i] == '-'))
			i++;
		size_t ed = 0;
		while (i < n && t[i] >= '0' && t[i] <= '9')
			i++, ed++;
		if (ed == 0)
			return false;
		exp = true;
	}
	if (i != n)
		return false;
	/* "1." alone is an integer; a float needs fraction digits or an exponent. */
	(void)dot;
	return frac_digits > 0 || exp;
}

static struct sexp *read_atom(struct reader *r)
{
	int sl = r->line, sc = r->col;
	size_t start = r->pos;
	while (is_constituent(peek(r)))
		advance(r);
	const char *t = r->s + start;
	size_t n = r->pos - start;
	autofree char *tok = xstrndup(t, n);
	if (is_int_token(t, n)) {
		errno = 0;
		char *end;
		long long v = strtoll(tok, &end, 10);
		if (errno == ERANGE) {
			fail(r, sl, sc,
			     "integer %s is out of range; expected a value between "
			     "-9223372036854775808 and 9223372036854775807",
			     tok);
			return NULL;
		}
		struct sexp *x = node(r, SEXP_INT, sl, sc);
		x->i = v;
		return x;
	}
	if (is_float_token(t, n)) {
		errno = 0;
		double v = strtod(tok, NULL);
		if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL)) {
			fail(r, sl, sc, "float %s is out of range", tok);
			return NULL;
		}
		struct sexp *x = node(r, SEXP_FLOAT, sl, sc);
		x->f = v;
		return x;
	}
	const char *colon = memchr(t + 1, ':', n ? n - 1 : 0);
	if (colon) {
		fail(r, sl, (int)(sc + (colon - t)),
		     "unexpected ':' inside the symbol %s; only a keyword starts with ':' (write "
		     "a string, like \"%s\")",
		     tok, tok);
		return NULL;
	}
	if (t[0] == ':') {
		if (n == 1) {
			fail(r, sl, sc, "expected a keyword name after ':'");
			return NULL;
		}
		struct sexp *x = node(r, SEXP_KEYWORD, sl, sc);
		x->str = xstrndup(t + 1, n - 1);
		x->len = n - 1;
		return x;
	}
	if (n == 1 && t[0] == '.') {
		fail(r, sl, sc, "unexpected '.' outside a list");
		return NULL;
	}
	struct sexp *x = node(r, SEXP_SYMBOL, sl, sc);
	x->str = steal_ptr(&tok);
	x->len = n;
	return x;
}

static struct sexp *read_value(struct reader *r, int depth);

/* A lone '.' token: a constituent run of exactly ".". */
static bool at_dot(const struct reader *r)
{
	return peek(r) == '.' && !is_constituent(peek2(r));
}

static struct sexp *read_list(struct reader *r, int depth)
{
	int sl = r->line, sc = r->col;
	if (depth >= SEXP_MAX_DEPTH) {
		fail(r, sl, sc, "lists nested deeper than %d levels", SEXP_MAX_DEPTH);
		return NULL;
	}
	advance(r); /* '(' */
	struct sexp *x = node(r, SEXP_LIST, sl, sc);
	size_t cap = 0;
	for (;;) {
		if (!skip_blank(r))
			goto bad;
		int c = peek(r);
		if (c == -1) {
			fail(r, sl, sc, "unterminated list started at %d:%d; expected ')'", sl, sc);
			goto bad;
		}
		if (c == ')') {
			advance(r);
			return x;
		}
		if (at_dot(r)) {
			int dl = r->line, dc = r->col;
			if (x->n == 0) {
				fail(r, dl, dc,
				     "unexpected '.' at the start of a list; expected a "
				     "value before '.'");
				goto bad;
			}
			advance(r);
			if (!skip_blank(r))
				goto bad;
			if (peek(r) == -1 || peek(r) == ')' || at_dot(r)) {
				fail(r, dl, dc, "expected a value after '.'");
				goto bad;
			}
			x->tail = read_value(r, depth + 1);
			if (!x->tail)
				goto bad;
			if (!skip_blank(r))
				goto bad;
			if (peek(r) != ')') {
				if (peek(r) == -1)
					fail(r, sl, sc,
					     "unterminated list started at %d:%d; expected ')'", sl,
					     sc);
				else
					fail(r, r->line, r->col,
					     "expected ')' after the value following '.' (a dotted "
					     "pair has one value after the dot)");
				goto bad;
			}
			advance(r);
			return x;
		}
		struct sexp *item = read_value(r, depth + 1);
		if (!item)
			goto bad;
		if (x->n == cap) {
			cap = cap ? cap * 2 : 4;
			x->items = xrealloc(x->items, cap * sizeof(*x->items));
		}
		x->items[x->n++] = item;
	}
bad:
	sexp_free(x);
	return NULL;
}

static struct sexp *read_value(struct reader *r, int depth)
{
	int c = peek(r);
	if (c == '(')
		return read_list(r, depth);
	if (c == '"')
		return read_string(r);
	if (c == ')') {
		fail(r, r->line, r->col, "unexpected ')'");
		return NULL;
	}
	if (is_constituent(c))
		return read_atom(r);
	if (c == '\'' || c == '`' || c == ',')
		fail(r, r->line, r->col,
		     "unexpected '%c': quoting is not part of the configuration language; write "
		     "the value itself",
		     c);
	else if (c == '#')
		fail(r, r->line, r->col,
		     "unexpected '#'; the only '#' syntax is a #| ... |# block comment");
	else if (c >= 0x21 && c < 0x7f)
		fail(r, r->line, r->col, "unexpected character '%c'", c);
	else
		fail(r, r->line, r->col,
		     "unexpected byte 0x%02x; outside strings only ASCII symbols, numbers, "
		     "keywords and lists are allowed",
		     c);
	return NULL;
}

int sexp_read(const char *file, const char *text, size_t len, struct sexp_doc **out,
	      struct conf_diags *diags)
{
	if (len > SEXP_MAX_INPUT) {
		conf_diags_add(diags, file, 0, 0, "file is %zu bytes; at most %u are read", len,
			       SEXP_MAX_INPUT);
		return -EFBIG;
	}
	struct sexp_doc *doc = xcalloc(1, sizeof(*doc));
	doc->file = xstrdup(file ? file : "(config)");
	struct reader r = {
		.file = doc->file, .s = text, .len = len, .line = 1, .col = 1, .diags = diags};
	size_t cap = 0;
	for (;;) {
		if (!skip_blank(&r))
			break;
		if (peek(&r) == -1)
			break;
		struct sexp *x = read_value(&r, 0);
		if (!x)
			break;
		if (doc->n == cap) {
			cap = cap ? cap * 2 : 8;
			doc->forms = xrealloc(doc->forms, cap * sizeof(*doc->forms));
		}
		doc->forms[doc->n++] = x;
	}
	if (r.failed) {
		sexp_doc_free(doc);
		return -EINVAL;
	}
	*out = doc;
	return 0;
}

void sexp_free(struct sexp *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n; i++)
		sexp_free(x->items[i]);
	free(x->items);
	sexp_free(x->tail);
	free(x->str);
	free(x);
}

void sexp_doc_free(struct sexp_doc *doc)
{
	if (!doc)
		return;
	for (size_t i = 0; i < doc->n; i++)
		sexp_free(doc->forms[i]);
	free(doc->forms);
	free(doc->file);
	free(doc);
}

/* ---- printing ---- */

void sexp_print_string(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			buf_adds(b, "\\\"");
			break;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		case 033:
			buf_adds(b, "\\e");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_addf(b, "\\x%02x", *p);
			else
				buf_addc(b, (char)*p);
		}
	}
	buf_addc(b, '"');
}

bool sexp_symbol_safe(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || s[0] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_constituent((unsigned char)s[i]) || s[i] == ':')
			return false;
	if (n == 1 && s[0] == '.')
		return false;
	return !is_int_token(s, n) && !is_float_token(s, n);
}

void sexp_print_name(struct buf *b, const char *s)
{
	/* t and nil read back as the symbols, but Lisp gives them meaning. */
	if (sexp_symbol_safe(s) && strcmp(s, "t") != 0 && strcmp(s, "nil") != 0)
		buf_adds(b, s);
	else
		sexp_print_string(b, s);
}

void sexp_print_float(struct buf *b, double f)
{
	char tmp[64];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	/* Make sure it reads back as a float: "1" -> "1.0", "1e+20" -> "1.0e+20". */
	char *e = strchr(tmp, 'e');
	if (!strchr(tmp, '.') && !strstr(tmp, "inf") && !strstr(tmp, "nan")) {
		if (e) {
			buf_add(b, tmp, (size_t)(e - tmp));
			buf_adds(b, ".0");
			buf_adds(b, e);
			return;
		}
		buf_adds(b, tmp);
		buf_adds(b, ".0");
		return;
	}
	buf_adds(b, tmp);
}

void sexp_print_to(struct buf *b, const struct sexp *x)
{
	switch (x->type) {
	case SEXP_LIST:
		buf_addc(b, '(');
		for (size_t i = 0; i < x->n; i++) {
			if (i)
				buf_addc(b, ' ');
			sexp_print_to(b, x->items[i]);
		}
		if (x->tail) {
			buf_adds(b, " . ");
			sexp_print_to(b, x->tail);
		}
		buf_addc(b, ')');
		break;
	case SEXP_STRING:
		sexp_print_string(b, x->str);
		break;
	case SEXP_INT:
		buf_addf(b, "%lld", (long long)x->i);
		break;
	case SEXP_FLOAT:
		sexp_print_float(b, x->f);
		break;
	case SEXP_SYMBOL:
		buf_adds(b, x->str);
		break;
	case SEXP_KEYWORD:
		buf_addc(b, ':');
		buf_adds(b, x->str);
		break;
	}
}

char *sexp_print(const struct sexp *x)
{
	struct buf b = BUF_INIT;
	sexp_print_to(&b, x);
	return buf_detach(&b, NULL);
}

bool sexp_equal(const struct sexp *a, const struct sexp *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case SEXP_LIST:
		if (a->n != b->n || !sexp_equal(a->tail, b->tail))
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!sexp_equal(a->items[i], b->items[i]))
				return false;
		return true;
	case SEXP_INT:
		return a->i == b->i;
	case SEXP_FLOAT:
		return a->f == b->f || (a->f != a->f && b->f != b->f);
	default:
		return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
	}
}

const char *sexp_type_name(enum sexp_type t)
{
	switch (t) {
	case SEXP_LIST:
		return "list";
	case SEXP_STRING:
		return "string";
	case SEXP_INT:
		return "integer";
	case SEXP_FLOAT:
		return "float";
	case SEXP_SYMBOL:
		return "symbol";
	case SEXP_KEYWORD:
		return "keyword";
	}
	return "value";
}

char *sexp_describe(const struct sexp *x)
{
	switch (x->type) {
	case SEXP_LIST:
		return xstrdup(x->n == 0 && !x->tail ? "an empty list" : "a list");
	case SEXP_STRING: {
		struct buf b = BUF_INIT;
		buf_adds(&b, "the string ");
		if (x->len > 40) {
			autofree char *cut = xstrndup(x->str, 37);
			sexp_print_string(&b, cut);
			buf_adds(&b, "...");
		} else {
			sexp_print_string(&b, x->str);
		}
		return buf_detach(&b, NULL);
	}
	case SEXP_INT:
		return xasprintf("the integer %lld", (long long)x->i);
	case SEXP_FLOAT: {
		struct buf b = BUF_INIT;
		buf_adds(&b, "the float ");
		sexp_print_float(&b, x->f);
		return buf_detach(&b, NULL);
	}
	case SEXP_SYMBOL:
		return xasprintf("the symbol %.40s", x->str);
	case SEXP_KEYWORD:
		return xasprintf("the keyword :%.40s", x->str);
	}
	return xstrdup("a value");
}
