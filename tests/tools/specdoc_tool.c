/*
 * specdoc-tool: the container key table (src/core/spec_keys.c) as
 * documentation, so that the docs cannot drift from the code.
 *
 *   specdoc-tool markdown        docs/config.md's key list on stdout
 *   specdoc-tool update FILE     rewrite FILE's key list, between the lines
 *                                "<!-- keys: begin ... -->" and "<!-- keys: end -->"
 *   specdoc-tool check FILE      exit 1 (saying so) when FILE's list differs
 *   specdoc-tool man             the clbsd.conf(5) manual page on stdout
 */
#include "core/spec.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_MARK "<!-- keys: begin"
#define END_MARK   "<!-- keys: end -->"

/* FILE's text with its key list replaced by `list`; NULL when the markers are missing. */
static char *with_list(const char *text, const char *list)
{
	const char *b = strstr(text, BEGIN_MARK);
	const char *e = b ? strstr(b, END_MARK) : NULL;
	const char *nl = b ? strchr(b, '\n') : NULL;
	if (!b || !e || !nl || nl > e)
		return NULL;
	return xasprintf("%.*s%s%s", (int)(nl + 1 - text), text, list, e);
}

static const char man_head[] =
	".TH CLBSD.CONF 5 \"\" \"clbsd\" \"File Formats\"\n"
	".SH NAME\n"
	"clbsd.conf \\- the declarative configuration of clbsdd\n"
	".SH SYNOPSIS\n"
	"/etc/clbsd/clbsd.conf, /etc/clbsd/conf.d/*.conf\n"
	".SH DESCRIPTION\n"
	"A file is a sequence of s\\-expression forms: (host ...), (image NAME ...),\n"
	"(network NAME ...), (container NAME ...) and (override NAME ...).\n"
	"Comments start with ;. Unknown keys and wrong types are errors naming\n"
	"file:line:column, the key and what was expected; a configuration that\n"
	"fails to validate changes nothing.\n"
	".SH CONTAINER KEYS\n"
	"The keys of (container NAME :key value ...). A key whose change\n"
	"recreates the container is part of its spec hash; the others apply to\n"
	"the running container. The API key given with a key is its name in the\n"
	"body of POST /v1/containers, which decodes into the same spec.\n";

static const char man_tail[] = ".SH FILES\n"
			       ".TP\n"
			       ".B /etc/clbsd/conf.d/90\\-live.conf\n"
			       "Changes made through the API, written by clbsdd.\n"
			       ".SH SEE ALSO\n"
			       ".BR clbsd (1),\n"
			       ".BR clbsdd (8);\n"
			       "docs/config.md for every form and example.\n";

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "markdown") == 0) {
		autofree char *md = ctr_spec_keys_markdown();
		fputs(md, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "man") == 0) {
		autofree char *keys = ctr_spec_keys_man();
		printf("%s%s%s", man_head, keys, man_tail);
		return 0;
	}
	if (argc == 3 && (strcmp(argv[1], "update") == 0 || strcmp(argv[1], "check") == 0)) {
		struct clbsd_err err;
		autofree char *text = NULL;
		if (fs_read_file(argv[2], &text, NULL, &err) < 0) {
			fprintf(stderr, "specdoc-tool: %s\n", err.msg);
			return 2;
		}
		autofree char *md = ctr_spec_keys_markdown();
		autofree char *want = with_list(text, md);
		if (!want) {
			fprintf(stderr, "specdoc-tool: %s has no \"%s\" ... \"%s\" lines\n",
				argv[2], BEGIN_MARK, END_MARK);
			return 2;
		}
		if (strcmp(argv[1], "check") == 0) {
			if (strcmp(want, text) == 0)
				return 0;
			fprintf(stderr,
				"specdoc-tool: %s's key list differs from src/core/spec_keys.c; "
				"run `make docs`\n",
				argv[2]);
			return 1;
		}
		if (strcmp(want, text) != 0 &&
		    fs_write_atomic(argv[2], want, strlen(want), 0644, &err) < 0) {
			fprintf(stderr, "specdoc-tool: %s\n", err.msg);
			return 2;
		}
		return 0;
	}
	fprintf(stderr, "usage: specdoc-tool markdown | man | update FILE | check FILE\n");
	return 2;
}
