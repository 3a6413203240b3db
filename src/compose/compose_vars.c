/*
 * The text rules Compose applies before the keys mean anything: variable
 * interpolation, .env / env_file lines and the split of a string command.
 * Pure: no file, no environment of our own.
 */
#include "compose/compose.h"
#include "util/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

char *compose_interpolate(const char *s, compose_lookup_fn look, void *arg, char **unset, char *why)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (const char *p = s; *p;) {
		if (*p != '$') {
			buf_addc(&b, *p++);
			continue;
		}
		if (p[1] == '$') {
			buf_addc(&b, '$');
			p += 2;
			continue;
		}
		if (name_start(p[1])) {
			const char *e = p + 1;
			while (name_char(*e))
				e++;
			autofree char *name = xstrndup(p + 1, (size_t)(e - p - 1));
			const char *v = look ? look(name, arg) : NULL;
			if (!v && unset && !*unset)
				*unset = xstrdup(name);
			buf_adds(&b, v ? v : "");
			p = e;
			continue;
		}
		if (p[1] != '{') {
			buf_addc(&b, *p++);
			continue;
		}
		/* ${NAME[op word]}: the word may hold ${...} itself, interpolated in turn. */
		const char *q = p + 2;
		if (!name_start(*q)) {
			snprintf(why, 256, "invalid interpolation \"%.60s\": expected ${NAME}", p);
			buf_release(&b);
			return NULL;
		}
		const char *ne = q;
		while (name_char(*ne))
			ne++;
		int depth = 1;
		const char *end = ne;
		for (; *end && depth; end++)
			depth += *end == '{' ? 1 : *end == '}' ? -1 : 0;
		if (depth) {
			snprintf(why, 256, "invalid interpolation \"%.60s\": no closing }", p);
			buf_release(&b);
			return NULL;
		}
		/* end is one past the closing brace. */
		autofree char *name = xstrndup(q, (size_t)(ne - q));
		const char *op = ne;
		autofree char *word = NULL;
		bool colon = *op == ':';
		char kind = colon ? op[1] : *op;
		if (kind != '}' && !strchr("-+?", kind)) {
			snprintf(why, 256, "invalid interpolation \"%.*s\"", (int)(end - p), p);
			buf_release(&b);
			return NULL;
		}
		if (kind != '}') {
			const char *ws = op + (colon ? 2 : 1);
			autofree char *raw = xstrndup(ws, (size_t)(end - 1 - ws));
			word = compose_interpolate(raw, look, arg, unset, why);
			if (!word) {
				buf_release(&b);
				return NULL;
			}
		}
		const char *v = look ? look(name, arg) : NULL;
		bool set = v && (!colon || *v);
		if (kind == '}') {
			if (!v && unset && !*unset)
				*unset = xstrdup(name);
			buf_adds(&b, v ? v : "");
		} else if (kind == '-') {
			buf_adds(&b, set ? v : word);
		} else if (kind == '+') {
			buf_adds(&b, set ? word : "");
		} else if (!set) {
			snprintf(why, 256, "required variable %s is %s: %s", name,
				 v ? "empty" : "not set",
				 *word ? word : "set it or give a default");
			buf_release(&b);
			return NULL;
		} else {
			buf_adds(&b, v);
		}
		p = end;
	}
	return buf_detach(&b, NULL);
}

int compose_env_line(const char *line, char **key, char **value)
{
	const char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '#' || *p == '\r' || *p == '\n')
		return 0;
	if (strncmp(p, "export ", 7) == 0)
		p += 7;
	while (*p == ' ' || *p == '\t')
		p++;
	const char *ke = p;
	while (*ke && *ke != '=' && *ke != ' ' && *ke != '\t' && *ke != '\r' && *ke != '\n')
		ke++;
	if (ke == p)
		return -1;
	const char *eq = ke;
	while (*eq == ' ' || *eq == '\t')
		eq++;
	if (*eq != '=') {
		if (*eq && *eq != '\r' && *eq != '\n' && *eq != '#')
			return -1;
		*key = xstrndup(p, (size_t)(ke - p));
		*value = NULL;
		return 1;
	}
	const char *v = eq + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	if (*v == '\'' || *v == '"') {
		char qc = *v++;
		for (; *v && *v != qc; v++) {
			if (qc == '"' && *v == '\\' && v[1]) {
				v++;
				buf_addc(&b, *v == 'n' ? '\n' : *v == 't' ? '\t' : *v);
			} else {
				buf_addc(&b, *v);
			}
		}
	} else {
		const char *e = v + strcspn(v, "\r\n");
		/* An unquoted value ends at " #" (a comment), and loses trailing blanks. */
		for (const char *c = v; c < e; c++)
			if (*c == '#' && c > v && (c[-1] == ' ' || c[-1] == '\t')) {
				e = c;
				break;
			}
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		buf_add(&b, v, (size_t)(e - v));
	}
	*key = xstrndup(p, (size_t)(ke - p));
	*value = buf_detach(&b, NULL);
	return 1;
}

char **compose_shell_split(const char *s, char *why, size_t n)
{
	struct strv out = STRV_INIT;
	struct buf w = BUF_INIT;
	bool in_word = false;
	for (const char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			if (in_word) {
				strv_push_owned(&out, buf_detach(&w, NULL));
				in_word = false;
			}
			continue;
		}
		in_word = true;
		if (*p == '\\' && p[1]) {
			buf_addc(&w, *++p);
		} else if (*p == '\'') {
			const char *e = strchr(p + 1, '\'');
			if (!e)
				goto unclosed;
			buf_add(&w, p + 1, (size_t)(e - p - 1));
			p = e;
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1]))
					p++;
				buf_addc(&w, *p);
			}
			if (!*p)
				goto unclosed;
		} else {
			buf_addc(&w, *p);
		}
		if (in_word && !w.data)
			buf_adds(&w, "");
	}
	if (in_word)
		strv_push_owned(&out, buf_detach(&w, NULL));
	buf_release(&w);
	if (!out.v)
		out.v = xcalloc(1, sizeof(char *));
	return out.v;
unclosed:
	snprintf(why, n, "a quote is not closed in \"%.80s\"", s);
	buf_release(&w);
	strv_release(&out);
	return NULL;
}
