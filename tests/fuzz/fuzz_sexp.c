/*
 * libFuzzer target: the s-expression reader and the configuration built on
 * it. What reads must print canonically, read back to an equal value and
 * print the same again; a configuration that validates must print a
 * canonical form that validates and prints identically.
 */
#include "fuzz.h"
#include "core/config.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct sexp_doc *reread(const char *text)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	if (sexp_read("again", text, strlen(text), &doc, &d) < 0)
		abort();
	conf_diags_release(&d);
	return doc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	if (sexp_read("fuzz", (const char *)data, size, &doc, &d) == 0) {
		for (size_t i = 0; i < doc->n; i++) {
			char *p = sexp_print(doc->forms[i]);
			struct sexp_doc *again = reread(p);
			if (again->n != 1 || !sexp_equal(doc->forms[i], again->forms[0]))
				abort();
			char *p2 = sexp_print(again->forms[0]);
			if (strcmp(p, p2) != 0)
				abort();
			free(p2);
			free(p);
			sexp_doc_free(again);
		}
		sexp_doc_free(doc);
	} else if (d.n != 1) {
		abort(); /* a syntax error is reported exactly once */
	}
	conf_diags_release(&d);

	struct conf_source src = {"fuzz", (const char *)data, size};
	struct conf *c = NULL;
	conf_diags_init(&d);
	if (conf_build(&src, 1, &c, &d) == 0) {
		char *p = conf_print(c);
		struct conf_source src2 = {"again", p, strlen(p)};
		struct conf *c2 = NULL;
		struct conf_diags d2 = CONF_DIAGS_INIT;
		if (conf_build(&src2, 1, &c2, &d2) != 0)
			abort();
		char *p2 = conf_print(c2);
		if (strcmp(p, p2) != 0)
			abort();
		for (size_t i = 0; i < c->ncontainers; i++) {
			char h1[65], h2[65];
			ctr_spec_hash(c->containers[i], h1);
			ctr_spec_hash(c2->containers[i], h2);
			if (strcmp(h1, h2) != 0)
				abort();
		}
		free(p2);
		free(p);
		conf_free(c2);
		conf_diags_release(&d2);
		conf_free(c);
	} else if (conf_diags_count(&d) == 0) {
		abort(); /* a rejection always says why */
	}
	conf_diags_release(&d);
	return 0;
}
