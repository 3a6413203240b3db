/* The s-expression reader and printer: every token kind, positions, every error. */
#include "conf/conf.h"
#include "test.h"
#include "util/util.h"

/* Read `text`; on failure return NULL with the formatted diagnostic in *msg. */
static struct sexp_doc *rd(const char *text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	int r = sexp_read("t.conf", text, strlen(text), &doc, &d);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? doc : NULL;
}

/* The single diagnostic of a failing read, without the trailing newline. */
static char *err_of(const char *text)
{
	char *msg;
	struct sexp_doc *doc = rd(text, &msg);
	sexp_doc_free(doc);
	if (doc)
		return xstrdup("(no error)");
	size_t n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	return msg;
}

TEST(tokens)
{
	autofree char *msg = NULL;
	struct sexp_doc *doc = rd("(web :image \"a\\\"b\\\\\\n\\t\\r\\e\\x41\" -12 +7 3.5 -0.25 "
				  "1e3 t nil on-failure 1.)",
				  &msg);
	CHECK(doc);
	CHECK_INT(doc->n, 1);
	struct sexp *l = doc->forms[0];
	CHECK_INT(l->type, SEXP_LIST);
	CHECK_INT(l->n, 12);
	CHECK_INT(l->items[0]->type, SEXP_SYMBOL);
	CHECK_STR(l->items[0]->str, "web");
	CHECK_INT(l->items[1]->type, SEXP_KEYWORD);
	CHECK_STR(l->items[1]->str, "image");
	CHECK_INT(l->items[2]->type, SEXP_STRING);
	CHECK_STR(l->items[2]->str, "a\"b\\\n\t\r\033A");
	CHECK_INT(l->items[3]->type, SEXP_INT);
	CHECK_INT(l->items[3]->i, -12);
	CHECK_INT(l->items[4]->i, 7);
	CHECK_INT(l->items[5]->type, SEXP_FLOAT);
	CHECK(l->items[5]->f == 3.5);
	CHECK(l->items[6]->f == -0.25);
	CHECK_INT(l->items[7]->type, SEXP_FLOAT);
	CHECK(l->items[7]->f == 1000.0);
	CHECK_STR(l->items[8]->str, "t");
	CHECK_STR(l->items[9]->str, "nil");
	CHECK_STR(l->items[10]->str, "on-failure");
	/* Lisp reads "1." as the integer 1. */
	CHECK_INT(l->items[11]->type, SEXP_INT);
	CHECK_INT(l->items[11]->i, 1);
	sexp_doc_free(doc);
}

TEST(dotted_and_nested)
{
	autofree char *msg = NULL;
	struct sexp_doc *doc = rd("((\"K\" . \"V\") (a b . c) () (((x))))", &msg);
	CHECK(doc);
	struct sexp *l = doc->forms[0];
	CHECK_INT(l->n, 4);
	CHECK_INT(l->items[0]->n, 1);
	CHECK(l->items[0]->tail != NULL);
	CHECK_STR(l->items[0]->tail->str, "V");
	CHECK_INT(l->items[1]->n, 2);
	CHECK_STR(l->items[1]->tail->str, "c");
	CHECK_INT(l->items[2]->n, 0);
	autofree char *p = sexp_print(l);
	CHECK_STR(p, "((\"K\" . \"V\") (a b . c) () (((x))))");
	sexp_doc_free(doc);
}

TEST(positions)
{
	autofree char *msg = NULL;
	struct sexp_doc *doc =
		rd("; comment\n#| block #| nested |# |#\n  (a\n\t\"x\ny\" :k)\nz", &msg);
	CHECK(doc);
	CHECK_INT(doc->n, 2);
	struct sexp *l = doc->forms[0];
	CHECK_INT(l->line, 3);
	CHECK_INT(l->col, 3);
	CHECK_INT(l->items[0]->line, 3);
	CHECK_INT(l->items[0]->col, 4);
	/* A tab counts as one byte column. */
	CHECK_INT(l->items[1]->line, 4);
	CHECK_INT(l->items[1]->col, 2);
	CHECK_STR(l->items[1]->str, "x\ny");
	CHECK_INT(l->items[2]->line, 5);
	CHECK_INT(l->items[2]->col, 4);
	CHECK_INT(doc->forms[1]->line, 6);
	CHECK_STR(doc->forms[1]->file, "t.conf");
	sexp_doc_free(doc);
}

TEST(errors)
{
	struct {
		const char *in, *want;
	} cases[] = {
		{"(a\n  :k \"abc", "t.conf:2:6: unterminated string started at 2:6; expected '\"'"},
		{"(a))", "t.conf:1:4: unexpected ')'"},
		{"(a . )", "t.conf:1:4: expected a value after '.'"},
		{"(. a)",
		 "t.conf:1:2: unexpected '.' at the start of a list; expected a value before '.'"},
		{"(a . b c)", "t.conf:1:8: expected ')' after the value following '.' (a dotted "
			      "pair has one value after the dot)"},
		{"(a (b)", "t.conf:1:1: unterminated list started at 1:1; expected ')'"},
		{"#| x #| y |#",
		 "t.conf:1:1: unterminated block comment started at 1:1; expected '|#'"},
		{"\"\\q\"", "t.conf:1:2: unknown escape '\\q' in string; expected one of \\\" \\\\ "
			    "\\n \\t \\r \\e \\xHH"},
		{"\"\\x4\"",
		 "t.conf:1:2: invalid escape in string: expected two hex digits after '\\x'"},
		{"\"\\x00\"", "t.conf:1:2: invalid escape in string: \\x00 (NUL is not allowed)"},
		{"99999999999999999999",
		 "t.conf:1:1: integer 99999999999999999999 is out of range; expected a value "
		 "between -9223372036854775808 and 9223372036854775807"},
		{"1e999", "t.conf:1:1: float 1e999 is out of range"},
		{"'a", "t.conf:1:1: unexpected ''': quoting is not part of the configuration "
		       "language; write the value itself"},
		{"#(1)",
		 "t.conf:1:1: unexpected '#'; the only '#' syntax is a #| ... |# block comment"},
		{"(a [b])", "t.conf:1:4: unexpected character '['"},
		{"a:b", "t.conf:1:2: unexpected ':' inside the symbol a:b; only a keyword starts "
			"with ':' (write a string, like \"a:b\")"},
		{"(:)", "t.conf:1:2: expected a keyword name after ':'"},
		{".", "t.conf:1:1: unexpected '.' outside a list"},
		{"\xc3\xa9", "t.conf:1:1: unexpected byte 0xc3; outside strings only ASCII "
			     "symbols, numbers, keywords and lists are allowed"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		autofree char *got = err_of(cases[i].in);
		CHECK_STR(got, cases[i].want);
	}
}

TEST(nul_in_input)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	CHECK(sexp_read("t.conf", "\"a\0b\"", 5, &doc, &d) < 0);
	CHECK_INT(d.n, 1);
	CHECK_STR(d.v[0].msg, "NUL byte in a string");
	conf_diags_release(&d);
}

TEST(depth_limit)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < SEXP_MAX_DEPTH + 10; i++)
		buf_addc(&b, '(');
	autofree char *e = err_of(b.data);
	CHECK(strstr(e, "nested deeper than 256 levels") != NULL);
	buf_reset(&b);
	for (int i = 0; i < SEXP_MAX_DEPTH; i++)
		buf_addc(&b, '(');
	for (int i = 0; i < SEXP_MAX_DEPTH; i++)
		buf_addc(&b, ')');
	autofree char *msg = NULL;
	struct sexp_doc *doc = rd(b.data, &msg);
	CHECK(doc != NULL);
	sexp_doc_free(doc);
	buf_release(&b);
}

TEST(size_limit)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	CHECK(sexp_read("big.conf", "", (size_t)SEXP_MAX_INPUT + 1, &doc, &d) < 0);
	CHECK_INT(d.n, 1);
	CHECK(strstr(d.v[0].msg, "at most") != NULL);
	conf_diags_release(&d);
}

TEST(print_roundtrip)
{
	const char *in =
		"(a \"q\\\"\\x01\\x7f\\e\" 0.1 1.0 -0.0 1e+300 2.5e-07 -5 :kw (x . \"y\") nil)";
	autofree char *msg = NULL;
	struct sexp_doc *doc = rd(in, &msg);
	CHECK(doc);
	autofree char *p = sexp_print(doc->forms[0]);
	CHECK_STR(
		p,
		"(a \"q\\\"\\x01\\x7f\\e\" 0.1 1.0 -0.0 1.0e+300 2.5e-07 -5 :kw (x . \"y\") nil)");
	autofree char *msg2 = NULL;
	struct sexp_doc *doc2 = rd(p, &msg2);
	CHECK(doc2);
	CHECK(sexp_equal(doc->forms[0], doc2->forms[0]));
	sexp_doc_free(doc);
	sexp_doc_free(doc2);
}

TEST(symbol_safety)
{
	CHECK(sexp_symbol_safe("web"));
	CHECK(sexp_symbol_safe("web-1"));
	CHECK(!sexp_symbol_safe("123"));
	CHECK(!sexp_symbol_safe("1e5"));
	CHECK(!sexp_symbol_safe("a:b"));
	CHECK(!sexp_symbol_safe(":k"));
	CHECK(!sexp_symbol_safe("a b"));
	CHECK(!sexp_symbol_safe(""));
	struct buf b = BUF_INIT;
	sexp_print_name(&b, "123");
	buf_addc(&b, ' ');
	sexp_print_name(&b, "nil");
	buf_addc(&b, ' ');
	sexp_print_name(&b, "db");
	CHECK_STR(b.data, "\"123\" \"nil\" db");
	buf_release(&b);
}

TEST(diags_cap)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	for (int i = 0; i < CONF_DIAGS_MAX + 3; i++)
		conf_diags_add(&d, "f", i + 1, 1, "e%d", i);
	CHECK_INT(d.n, CONF_DIAGS_MAX);
	CHECK_INT(conf_diags_count(&d), CONF_DIAGS_MAX + 3);
	autofree char *s = conf_diags_format(&d);
	CHECK(strstr(s, "f:1:1: e0\n") == s);
	CHECK(strstr(s, "... and 3 more errors\n") != NULL);
	conf_diags_release(&d);
}

TEST_MAIN_BEGIN("conf.sexp")
RUN(tokens);
RUN(dotted_and_nested);
RUN(positions);
RUN(errors);
RUN(nul_in_input);
RUN(depth_limit);
RUN(size_limit);
RUN(print_roundtrip);
RUN(symbol_safety);
RUN(diags_cap);
TEST_MAIN_END
