/* Request decoding shared by the handlers (req_decode.h). */
#include "req_decode.h"
#include "util/util.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

char *api_query_value(const char *query, const char *key)
{
	if (!query)
		return NULL;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(query, &kv) < 0)
		return NULL;
	const char *v = evhttp_find_header(&kv, key);
	char *r = v ? xstrdup(v) : NULL;
	evhttp_clear_headers(&kv);
	return r;
}

bool api_flag_value(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

int api_seconds_value(const char *v, int def, int *out)
{
	long long secs = def;
	if (v && parse_int(v, 0, 86400, &secs) < 0)
		return -1;
	*out = (int)secs;
	return 0;
}

json_t *api_body_decode(const char *text, size_t n, char *why, size_t whylen)
{
	if (n == 0)
		return json_object();
	/* Up to the first NUL, as the daemon always read bodies. */
	autofree char *s = xstrndup(text, n);
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		snprintf(why, whylen, "request body is not JSON: %d:%d: %s", je.line, je.column,
			 je.text);
	return j;
}

static bool field_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int api_fields_decode(const char *v, struct api_fields *out, char *why, size_t whylen)
{
	struct api_fields f = {0};
	f.buf = xstrdup(v ? v : "");
	char *save = NULL;
	for (char *tok = strtok_r(f.buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (f.n == API_FIELDS_MAX) {
			snprintf(why, whylen, "fields: more than %d fields", API_FIELDS_MAX);
			goto bad;
		}
		char *dot = strchr(tok, '.');
		if (dot)
			*dot = '\0';
		if (!field_name_ok(tok) || (dot && !field_name_ok(dot + 1))) {
			if (dot)
				*dot = '.';
			snprintf(why, whylen,
				 "fields: \"%.64s\" is not a field (a member name of [a-z0-9_], or "
				 "MEMBER.SUB such as config.limits)",
				 tok);
			goto bad;
		}
		f.key[f.n] = tok;
		f.sub[f.n] = dot ? dot + 1 : NULL;
		f.n++;
	}
	if (f.n == 0) {
		snprintf(why, whylen, "fields: empty (name the members to keep, e.g. name,state)");
		goto bad;
	}
	*out = f;
	return 0;
bad:
	free(f.buf);
	return -1;
}

void api_fields_release(struct api_fields *f)
{
	free(f->buf);
	*f = (struct api_fields){0};
}

bool api_fields_want(const struct api_fields *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->key[i], key) == 0)
			return true;
	return false;
}

json_t *api_fields_pick(json_t *obj, const struct api_fields *f)
{
	json_t *out = json_object();
	/* Whole members first, so that a part of one already there is not added. */
	for (size_t i = 0; i < f->n; i++) {
		json_t *v = f->sub[i] ? NULL : json_object_get(obj, f->key[i]);
		if (v)
			json_object_set(out, f->key[i], v);
	}
	for (size_t i = 0; i < f->n; i++) {
		if (!f->sub[i])
			continue;
		json_t *m = json_object_get(obj, f->key[i]);
		if (json_is_null(m)) {
			/* A part of a null member (no stats, no health yet): null. */
			if (!json_object_get(out, f->key[i]))
				json_object_set(out, f->key[i], m);
			continue;
		}
		json_t *v = json_is_object(m) ? json_object_get(m, f->sub[i]) : NULL;
		if (!v)
			continue;
		json_t *into = json_object_get(out, f->key[i]);
		if (into == m)
			continue; /* the whole member is there */
		if (!into) {
			into = json_object();
			json_object_set_new(out, f->key[i], into);
		}
		json_object_set(into, f->sub[i], v);
	}
	return out;
}
