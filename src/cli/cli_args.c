/*
 * The one argv parser of the CLI: a command line against the command's
 * table entry (its options and positional arguments). Pure: no I/O, so the
 * unit tests pin what every shape of command line becomes.
 *
 * Options may come anywhere before the command's own argv, as Docker users
 * type them (`clbsd stop web -t 1`, `clbsd logs db -f`): everywhere for most
 * commands, and up to the stop_at-th positional for run, create and exec,
 * whose later words belong to the container's command. "--" ends options.
 * A value is the rest of the word ("-t1", "--time=1") or the next word.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INVALID(err, ...) clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, __VA_ARGS__)

const struct cli_opt *cli_opt_find(const struct cli_cmd *cmd, const char *name)
{
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

bool cli_declares(const struct cli_cmd *cmd, const char *name)
{
	return cli_opt_find(cmd, name) != NULL;
}

/* A long option by name or alias, compared over the first n bytes of word. */
static const struct cli_opt *find_long(const struct cli_cmd *cmd, const char *word, size_t n)
{
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
		if (strlen(o->name) == n && strncmp(o->name, word, n) == 0)
			return o;
		if (o->alias && strlen(o->alias) == n && strncmp(o->alias, word, n) == 0)
			return o;
	}
	return NULL;
}

static const struct cli_opt *find_short(const struct cli_cmd *cmd, char c)
{
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
		if (o->short_name == c)
			return o;
	return NULL;
}

static void add_given(struct cli_args *a, const struct cli_opt *o, const char *val)
{
	a->given = xrealloc(a->given, (a->ngiven + 1) * sizeof(*a->given));
	a->given[a->ngiven++] = (struct cli_given){.opt = o, .val = val};
}

/* "--name[=value]" at argv[*i]; *i moves past a value taken from the next word. */
static int parse_long(const struct cli_cmd *cmd, int argc, char **argv, int *i, struct cli_args *a,
		      struct clbsd_err *err)
{
	const char *w = argv[*i] + 2;
	size_t n = strcspn(w, "=");
	const char *eq = w[n] == '=' ? w + n + 1 : NULL;
	const struct cli_opt *o = find_long(cmd, w, n);
	if (!o && n == 4 && strncmp(w, "help", 4) == 0)
		return 1;
	if (!o)
		return INVALID(err, "unknown option '--%.*s'", (int)(n < 60 ? n : 60), w);
	if (!o->arg) {
		if (eq)
			return INVALID(err, "option '--%s' takes no value", o->name);
		add_given(a, o, NULL);
		return 0;
	}
	if (!eq) {
		if (*i + 1 >= argc)
			return INVALID(err, "option '--%.*s' needs a value", (int)n, w);
		eq = argv[++*i];
	}
	add_given(a, o, eq);
	return 0;
}

/* "-abc" or "-tVALUE" / "-t VALUE" at argv[*i]. */
static int parse_short(const struct cli_cmd *cmd, int argc, char **argv, int *i, struct cli_args *a,
		       struct clbsd_err *err)
{
	const char *w = argv[*i];
	for (size_t j = 1; w[j]; j++) {
		const struct cli_opt *o = find_short(cmd, w[j]);
		if (!o && w[j] == 'h')
			return 1;
		if (!o)
			return INVALID(err, "unknown option '-%c'", w[j]);
		if (!o->arg) {
			add_given(a, o, NULL);
			continue;
		}
		const char *val = w + j + 1;
		if (!*val) {
			if (*i + 1 >= argc)
				return INVALID(err, "option '-%c' needs a value", w[j]);
			val = argv[++*i];
		}
		add_given(a, o, val);
		return 0;
	}
	return 0;
}

/* The synopsis words of the positionals from the n-th (0-based) on, for "missing ...". */
static void missing_words(const struct cli_cmd *cmd, int have, struct buf *out)
{
	autofree char *syn = xstrdup(cmd->args ? cmd->args : "ARG");
	int k = 0;
	char *save = NULL;
	for (char *w = strtok_r(syn, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		/* Optional words ("[LABEL]") and repeats ("[ARG...]") are never missing. */
		if (w[0] == '[' || strcmp(w, "|") == 0)
			break;
		if (k++ < have)
			continue;
		size_t n = strlen(w);
		if (n > 3 && strcmp(w + n - 3, "...") == 0)
			w[n - 3] = '\0';
		if (out->len)
			buf_adds(out, " and ");
		buf_adds(out, w);
	}
	if (!out->len)
		buf_adds(out, "an argument");
}

static int check_positional(const struct cli_cmd *cmd, int k, const char *v, struct clbsd_err *err)
{
	enum cli_kind kind = cmd->kinds[k ? 1 : 0];
	if (kind == CLI_K_CONTAINER && !valid_name(v))
		return INVALID(err,
			       "invalid container name \"%s\": expected a DNS label (lowercase "
			       "letters, digits and '-', 1-63 characters)",
			       v);
	if (kind == CLI_K_IMAGE && !valid_image_ref(v))
		return INVALID(err, "invalid image reference \"%s\": expected NAME[:TAG] or an id",
			       v);
	return 0;
}

int cli_args_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a,
		   struct clbsd_err *err)
{
	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	a->argv = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
	bool opts_end = false;
	int r = 0;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (!opts_end && strcmp(w, "--") == 0) {
			opts_end = true;
			continue;
		}
		if (!opts_end && w[0] == '-' && w[1]) {
			r = w[1] == '-' ? parse_long(cmd, argc, argv, &i, a, err)
					: parse_short(cmd, argc, argv, &i, a, err);
			if (r)
				return r;
			continue;
		}
		a->argv[a->argc++] = argv[i];
		if (cmd->stop_at && a->argc == cmd->stop_at)
			opts_end = true;
	}
	if (a->argc < cmd->min_args) {
		struct buf b = BUF_INIT;
		missing_words(cmd, a->argc, &b);
		r = INVALID(err, "missing %s", b.data);
		buf_release(&b);
		return r;
	}
	if (cmd->max_args >= 0 && a->argc > cmd->max_args)
		return INVALID(err, "unexpected argument \"%s\"", a->argv[cmd->max_args]);
	if (cmd->flags & CLI_CHECK_ARGS) {
		int n = cmd->stop_at ? cmd->stop_at : a->argc;
		for (int k = 0; k < n && k < a->argc; k++)
			if ((r = check_positional(cmd, k, a->argv[k], err)) < 0)
				return r;
	}
	return 0;
}

void cli_args_release(struct cli_args *a)
{
	free(a->argv);
	free(a->given);
	a->argv = NULL;
	a->given = NULL;
	a->argc = 0;
	a->ngiven = 0;
}

static const struct cli_opt *declared(const struct cli_args *a, const char *name)
{
	const struct cli_opt *o = cli_opt_find(a->cmd, name);
	if (!o) {
		/* A command asking for an option its entry lacks is a bug in the table. */
		fprintf(stderr, "clbsd: bug: %s has no option --%s\n", a->cmd->name, name);
		abort();
	}
	return o;
}

/* Given options match by long name, so a hidden second spelling counts as the option. */
static bool is(const struct cli_given *g, const struct cli_opt *o)
{
	return g->opt == o || strcmp(g->opt->name, o->name) == 0;
}

bool cli_has(const struct cli_args *a, const char *name)
{
	const struct cli_opt *o = declared(a, name);
	for (size_t i = 0; i < a->ngiven; i++)
		if (is(&a->given[i], o))
			return true;
	return false;
}

const char *cli_get(const struct cli_args *a, const char *name)
{
	const struct cli_opt *o = declared(a, name);
	const char *v = NULL;
	for (size_t i = 0; i < a->ngiven; i++)
		if (is(&a->given[i], o))
			v = a->given[i].val;
	return v;
}

const char *cli_get_nth(const struct cli_args *a, const char *name, size_t n)
{
	const struct cli_opt *o = declared(a, name);
	for (size_t i = 0; i < a->ngiven; i++)
		if (is(&a->given[i], o) && n-- == 0)
			return a->given[i].val;
	return NULL;
}
