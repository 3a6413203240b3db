/* The audit log's pure parts: see audit_rec.h. */
#include "core/audit_rec.h"
#include "util/json.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void audit_time_text(int64_t ns, char *buf, size_t len)
{
	char full[48];
	time_fmt_rfc3339(ns, full, sizeof(full));
	/* "YYYY-MM-DDTHH:MM:SS.mmm" is 23 characters: milliseconds, then Z. */
	if (strlen(full) > 24) {
		full[23] = 'Z';
		full[24] = '\0';
	}
	snprintf(buf, len, "%s", full);
}

/*
 * What is left of a record's room (AUDIT_REC_MAX): each value taken counts
 * what it costs encoded, so escaping (a control byte is 6 bytes) counts too.
 */
struct room {
	size_t left;
};

/* Bytes byte c takes in a JSON string (jansson's escapes; no ensure-ascii). */
static size_t esc_cost(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/*
 * The string s (n bytes) cut to at most max bytes and to what the room has
 * left, on a UTF-8 boundary, "..." ending a cut one (the marker).
 */
static json_t *cut_string(const char *s, size_t n, size_t max, struct room *room)
{
	size_t avail = room->left > 8 ? room->left - 8 : 0; /* quotes, "...", comma */
	size_t cost = 0, k = 0;
	while (k < n && k < max && cost + esc_cost((unsigned char)s[k]) <= avail)
		cost += esc_cost((unsigned char)s[k++]);
	if (k == n) {
		room->left -= cost + 3 < room->left ? cost + 3 : room->left;
		return json_stringn(s, n);
	}
	if (k > 3 && k == max)
		k -= 3;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	cost = 0;
	for (size_t i = 0; i < k; i++)
		cost += esc_cost((unsigned char)s[i]);
	room->left -= cost + 6 < room->left ? cost + 6 : room->left;
	autofree char *t = xmalloc(k + 4);
	memcpy(t, s, k);
	memcpy(t + k, "...", 4);
	return json_string(t);
}

static json_t *bounded(const json_t *v, int depth, struct room *room)
{
	if (json_is_string(v))
		return cut_string(json_string_value(v), json_string_length(v), AUDIT_STR_MAX, room);
	if (depth > 4 || room->left < 32) {
		room->left -= room->left < 6 ? room->left : 6;
		return json_string("...");
	}
	if (json_is_array(v)) {
		json_t *a = json_array();
		size_t i;
		const json_t *e;
		room->left -= 2;
		json_array_foreach(v, i, e)
		{
			if (i == 256 || room->left < 32) {
				json_array_append_new(a, json_string("..."));
				room->left -= room->left < 6 ? room->left : 6;
				break;
			}
			json_array_append_new(a, bounded(e, depth + 1, room));
		}
		return a;
	}
	if (json_is_object(v)) {
		json_t *o = json_object();
		const char *k;
		const json_t *e;
		room->left -= 2;
		json_object_foreach((json_t *)(uintptr_t)v, k, e)
		{
			if (room->left < 64 || json_object_size(o) == 256) {
				json_object_set_new(o, "...", json_string("..."));
				room->left -= room->left < 12 ? room->left : 12;
				break;
			}
			/* Keys are bounded too, and a cut one gets the marker. */
			json_t *key = cut_string(k, strlen(k), AUDIT_KEY_MAX, room);
			room->left -= room->left < 1 ? room->left : 1;
			json_object_set_new(o, json_string_value(key), bounded(e, depth + 1, room));
			json_decref(key);
		}
		return o;
	}
	room->left -= room->left < 24 ? room->left : 24; /* a number, true, null */
	return json_deep_copy(v);
}

char *audit_rec_line(int64_t time_ns, uint64_t seq, const json_t *fields)
{
	char ts[32];
	audit_time_text(time_ns, ts, sizeof(ts));
	json_t *j = json_object();
	json_object_set_new(j, "time", json_string(ts));
	json_object_set_new(j, "seq", json_integer((json_int_t)seq));
	/* time and seq take under 64 bytes; the marker record below 128 more. */
	struct room room = {AUDIT_REC_MAX - 256};
	const char *k;
	const json_t *v;
	if (json_is_object(fields))
		json_object_foreach((json_t *)(uintptr_t)fields, k, v)
		{
			if (strcmp(k, "time") == 0 || strcmp(k, "seq") == 0)
				continue;
			if (room.left < 64) {
				json_object_set_new(j, "truncated", json_true());
				break;
			}
			json_t *key = cut_string(k, strlen(k), AUDIT_KEY_MAX, &room);
			json_object_set_new(j, json_string_value(key), bounded(v, 0, &room));
			json_decref(key);
		}
	char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!line)
		abort();
	if (strlen(line) > AUDIT_REC_MAX) {
		/* Cannot happen if the costs above are right; the bound holds anyway. */
		free(line);
		const char *ev = json_is_object(fields) ? json_str(fields, "event") : NULL;
		json_t *m =
			json_pack("{s:s,s:I,s:s%,s:b}", "time", ts, "seq", (json_int_t)seq, "event",
				  ev ? ev : "?", ev ? strnlen(ev, 64) : 1, "truncated", 1);
		line = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(m);
		if (!line)
			abort();
	}
	return line;
}

char *audit_file_path(const char *base, int i)
{
	return i == 0 ? xstrdup(base) : xasprintf("%s.%d", base, i);
}

bool audit_rotate_due(int64_t size, size_t add, int64_t max)
{
	return size > 0 && size + (int64_t)add > max;
}

bool audit_rec_wanted(const json_t *rec, int64_t since_ns, const char *container)
{
	if (container) {
		const char *c = json_str(rec, "container");
		if (!c || strcmp(c, container) != 0)
			return false;
	}
	if (since_ns > 0) {
		const char *t = json_str(rec, "time");
		int64_t ns;
		if (!t || time_parse_rfc3339(t, &ns) < 0 || ns < since_ns)
			return false;
	}
	return true;
}

static const struct {
	const char *name;
	unsigned bit;
} classes[] = {
	{"ex", AUDIT_C_EX}, {"lo", AUDIT_C_LO}, {"fr", AUDIT_C_FR}, {"fw", AUDIT_C_FW},
	{"fc", AUDIT_C_FC}, {"fd", AUDIT_C_FD}, {"fm", AUDIT_C_FM}, {"fa", AUDIT_C_FA},
	{"cl", AUDIT_C_CL}, {"pc", AUDIT_C_PC}, {"nt", AUDIT_C_NT}, {"ip", AUDIT_C_IP},
	{"ad", AUDIT_C_AD}, {"aa", AUDIT_C_AA}, {"ot", AUDIT_C_OT}, {"io", AUDIT_C_IO},
	{"ap", AUDIT_C_AP},
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))

int audit_classes_parse(const char *s, unsigned *mask, char *why, size_t wlen)
{
	unsigned m = 0;
	bool unknown = false;
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		bool exclude = false;
		if (n && *p == '^') {
			exclude = true;
			p++, n--;
		}
		if (n && (*p == '+' || *p == '-'))
			p++, n--;
		if (!n) {
			snprintf(why, wlen,
				 "AUDITCFG \"%s\": an empty class (classes are like ex,lo)", s);
			return -1;
		}
		unsigned bit = 0;
		if (n == 3 && strncmp(p, "all", 3) == 0) {
			bit = ~0u;
		} else {
			for (size_t i = 0; i < NCLASSES; i++)
				if (strlen(classes[i].name) == n &&
				    strncmp(p, classes[i].name, n) == 0)
					bit = classes[i].bit;
		}
		if (!bit && !unknown) {
			/* A site may define classes of its own (audit_class(5)): not fatal. */
			snprintf(why, wlen,
				 "AUDITCFG \"%s\": audit class \"%.*s\" means nothing to clbsd "
				 "(it knows FreeBSD's ex, lo, fr, fw, fc, fd, fm, fa, cl, pc, nt, "
				 "ip, "
				 "ad, aa, ot, io, ap, all); ignored",
				 s, (int)n, p);
			unknown = true;
		}
		if (exclude)
			m &= ~bit;
		else
			m |= bit;
		if (!end)
			break;
		p = end + 1;
	}
	unsigned all = 0;
	for (size_t i = 0; i < NCLASSES; i++)
		all |= classes[i].bit;
	*mask = m & all;
	return unknown ? 1 : 0;
}

char *audit_classes_text(unsigned mask)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < NCLASSES; i++)
		if (mask & classes[i].bit)
			buf_addf(&b, "%s%s", b.len ? "," : "", classes[i].name);
	return buf_detach(&b, NULL);
}
