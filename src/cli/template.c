/*
 * --format templates: the small subset of Go's text/template that docker's
 * --format habits need, over the daemon's JSON. Pure, so the unit tests pin
 * every form.
 *
 *   text                  copied; \t and \n are a tab and a newline
 *   {{.}}                 the whole item (JSON when it is an object)
 *   {{.A.B}}              a path: each name is a key of the computed fields
 *                         (ps's Status, Ports...) or of the item's JSON, matched
 *                         exactly, else without case and '_' (.ExitCode is
 *                         exit_code, .Config.Hostname is config.hostname)
 *   {{json .}} {{json .A}} the value as compact JSON
 *   {{upper .A}} {{lower .A}}
 *   "table " at the start  aligned columns (split at tabs) under a header
 *
 * Strings print as they are, numbers as numbers, booleans as true/false,
 * null and a key one item lacks as nothing, objects and arrays as JSON.
 * A path that names nothing in any item listed is an error naming it.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INVALID(err, ...) clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, __VA_ARGS__)

enum tmpl_fn { TF_PRINT, TF_JSON, TF_UPPER, TF_LOWER };

struct tmpl_part {
	char *text;	  /* literal text, or NULL for an action */
	enum tmpl_fn fn;  /* an action's function */
	struct strv path; /* an action's path; empty for "." */
	char *src;	  /* the action as written, for messages and the table header */
};

struct tmpl {
	bool table;
	struct tmpl_part *parts;
	size_t n;
};

static void unescape(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 't' || s[i + 1] == 'n')) {
			buf_addc(b, s[i + 1] == 't' ? '\t' : '\n');
			i++;
		} else {
			buf_addc(b, s[i]);
		}
	}
}

static struct tmpl_part *add_part(struct tmpl *t)
{
	t->parts = xrealloc(t->parts, (t->n + 1) * sizeof(*t->parts));
	struct tmpl_part *p = &t->parts[t->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

/* ".A.B" or "." into path; false when it is not one. */
static bool parse_path(const char *s, struct strv *path)
{
	if (s[0] != '.')
		return false;
	if (!s[1])
		return true;
	autofree char *copy = xstrdup(s + 1);
	char *save = NULL;
	size_t want = 1;
	for (const char *c = s + 1; *c; c++)
		want += *c == '.';
	for (char *w = strtok_r(copy, ".", &save); w; w = strtok_r(NULL, ".", &save)) {
		for (const char *c = w; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '_')
				return false;
		strv_push(path, w);
	}
	return path->n == want;
}

/* One action's words: "FN .PATH" or ".PATH". */
static int parse_action(struct tmpl_part *p, const char *src, struct clbsd_err *err)
{
	autofree char *copy = xstrdup(src);
	char *words[3] = {NULL};
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == 2)
			return INVALID(err,
				       "--format: {{%s}}: expected {{.Field}} or {{json .Field}}",
				       src);
		words[n++] = w;
	}
	if (n == 0)
		return INVALID(err, "--format: an empty {{}}");
	const char *path = words[n - 1];
	p->fn = TF_PRINT;
	if (n == 2) {
		if (strcmp(words[0], "json") == 0)
			p->fn = TF_JSON;
		else if (strcmp(words[0], "upper") == 0)
			p->fn = TF_UPPER;
		else if (strcmp(words[0], "lower") == 0)
			p->fn = TF_LOWER;
		else
			return INVALID(err,
				       "--format: {{%s}}: unknown function \"%s\" (json, upper "
				       "and lower are known)",
				       src, words[0]);
	}
	if (!parse_path(path, &p->path))
		return INVALID(err, "--format: {{%s}}: expected a field like .Name or .Config.Env",
			       src);
	return 0;
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->parts[i].text);
		free(t->parts[i].src);
		strv_release(&t->parts[i].path);
	}
	free(t->parts);
	free(t);
}

int tmpl_parse(const char *text, struct tmpl **out, struct clbsd_err *err)
{
	struct tmpl *t = xcalloc(1, sizeof(*t));
	if (strncmp(text, "table", 5) == 0 && (text[5] == ' ' || text[5] == '\0')) {
		t->table = true;
		text += text[5] ? 6 : 5;
	}
	const char *p = text;
	while (*p) {
		const char *open = strstr(p, "{{");
		size_t lit = open ? (size_t)(open - p) : strlen(p);
		if (lit) {
			struct buf b = BUF_INIT;
			unescape(&b, p, lit);
			add_part(t)->text = buf_detach(&b, NULL);
		}
		if (!open)
			break;
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			tmpl_free(t);
			return INVALID(err, "--format: \"%.40s\" has no closing \"}}\"", open);
		}
		struct tmpl_part *part = add_part(t);
		/* Go's trim markers ("{{- .X -}}") are accepted and ignored. */
		const char *s = open + 2, *e = close;
		if (*s == '-' && s + 1 < e && s[1] == ' ')
			s++;
		if (e - s >= 2 && e[-1] == '-' && e[-2] == ' ')
			e--;
		while (s < e && *s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		part->src = xstrndup(s, (size_t)(e - s));
		int r = parse_action(part, part->src, err);
		if (r < 0) {
			tmpl_free(t);
			return r;
		}
		p = close + 2;
	}
	*out = t;
	return 0;
}

bool tmpl_is_table(const struct tmpl *t)
{
	return t->table;
}

/* "exit_code" and "ExitCode" are the same name. */
static bool same_name(const char *key, const char *want)
{
	for (;;) {
		while (*key == '_')
			key++;
		while (*want == '_')
			want++;
		if (!*key || !*want)
			return !*key && !*want;
		if (tolower((unsigned char)*key) != tolower((unsigned char)*want))
			return false;
		key++;
		want++;
	}
}

/* jansson's iteration wants a json_t *: its getters hand those out from const arrays. */
static json_t *key_of(json_t *obj, const char *name, bool exact)
{
	if (!json_is_object(obj))
		return NULL;
	if (exact)
		return json_object_get(obj, name);
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) if (same_name(k, name)) return v;
	return NULL;
}

/* What a path names in (item, extra), or NULL. */
static json_t *resolve(const struct strv *path, json_t *item, json_t *extra)
{
	if (path->n == 0)
		return item;
	const char *first = path->v[0];
	json_t *v = key_of(extra, first, true);
	if (!v)
		v = key_of(item, first, true);
	if (!v)
		v = key_of(extra, first, false);
	if (!v)
		v = key_of(item, first, false);
	for (size_t i = 1; v && i < path->n; i++) {
		json_t *n = key_of(v, path->v[i], true);
		v = n ? n : key_of(v, path->v[i], false);
	}
	return v;
}

int tmpl_check(const struct tmpl *t, const json_t *items, const json_t *extras,
	       struct clbsd_err *err)
{
	if (!json_array_size(items))
		return 0;
	for (size_t k = 0; k < t->n; k++) {
		const struct tmpl_part *p = &t->parts[k];
		if (p->text)
			continue;
		bool found = false;
		for (size_t i = 0; !found && i < json_array_size(items); i++)
			found = resolve(&p->path, json_array_get(items, i),
					json_array_get(extras, i)) != NULL;
		if (!found)
			return INVALID(err, "--format: {{%s}}: unknown field", p->src);
	}
	return 0;
}

static void put_value(struct buf *b, const json_t *v, enum tmpl_fn fn)
{
	if (!v)
		return;
	if (fn == TF_JSON || json_is_object(v) || json_is_array(v)) {
		autofree char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		buf_adds(b, s);
		return;
	}
	size_t start = b->len;
	if (json_is_string(v))
		buf_add(b, json_string_value(v), json_string_length(v));
	else if (json_is_integer(v))
		buf_addf(b, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		buf_addf(b, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		buf_adds(b, json_is_true(v) ? "true" : "false");
	for (size_t i = start; fn != TF_PRINT && i < b->len; i++)
		b->data[i] = (char)(fn == TF_UPPER ? toupper((unsigned char)b->data[i])
						   : tolower((unsigned char)b->data[i]));
}

void tmpl_render(const struct tmpl *t, json_t *item, json_t *extra, struct buf *out)
{
	for (size_t k = 0; k < t->n; k++) {
		const struct tmpl_part *p = &t->parts[k];
		if (p->text)
			buf_adds(out, p->text);
		else
			put_value(out, resolve(&p->path, item, extra), p->fn);
	}
}

char *tmpl_header(const struct tmpl *t)
{
	struct buf b = BUF_INIT;
	for (size_t k = 0; k < t->n; k++) {
		const struct tmpl_part *p = &t->parts[k];
		if (p->text) {
			buf_adds(&b, p->text);
			continue;
		}
		const char *name = p->path.n ? p->path.v[p->path.n - 1] : "json";
		for (const char *c = name; *c; c++) {
			/* "RunningFor" -> "RUNNING FOR", as docker's headers read. */
			if (c != name && isupper((unsigned char)*c) &&
			    islower((unsigned char)c[-1]))
				buf_addc(&b, ' ');
			buf_addc(&b, *c == '_' ? ' ' : (char)toupper((unsigned char)*c));
		}
	}
	return buf_detach(&b, NULL);
}
