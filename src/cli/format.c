/*
 * Output for people: aligned tables, Docker-style durations and sizes, the
 * ps STATUS column, event lines, and decoding of CRI log lines. Pure: every
 * function takes the current time and returns strings, so unit tests can pin
 * the exact output.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define NS_PER_SEC 1000000000LL

void fmt_duration(int64_t ns, char *buf, size_t len)
{
	int64_t secs = ns / NS_PER_SEC;
	int64_t mins = secs / 60;
	/* Hours round to the nearest, like Docker's HumanDuration. */
	int64_t hours = (secs + 1800) / 3600;
	if (secs < 1)
		snprintf(buf, len, "Less than a second");
	else if (secs == 1)
		snprintf(buf, len, "1 second");
	else if (secs < 60)
		snprintf(buf, len, "%" PRId64 " seconds", secs);
	else if (mins == 1)
		snprintf(buf, len, "About a minute");
	else if (mins < 60)
		snprintf(buf, len, "%" PRId64 " minutes", mins);
	else if (hours == 1)
		snprintf(buf, len, "About an hour");
	else if (hours < 48)
		snprintf(buf, len, "%" PRId64 " hours", hours);
	else if (hours < 24 * 7 * 2)
		snprintf(buf, len, "%" PRId64 " days", hours / 24);
	else if (hours < 24 * 30 * 2)
		snprintf(buf, len, "%" PRId64 " weeks", hours / 24 / 7);
	else if (hours < 24 * 365 * 2)
		snprintf(buf, len, "%" PRId64 " months", hours / 24 / 30);
	else
		snprintf(buf, len, "%" PRId64 " years", secs / 3600 / 24 / 365);
}

void fmt_ago(int64_t then_ns, int64_t now_ns, char *buf, size_t len)
{
	/* Clocks of client and daemon may differ a little; never show the future. */
	fmt_duration(now_ns > then_ns ? now_ns - then_ns : 0, buf, len);
	size_t n = strlen(buf);
	if (n < len)
		snprintf(buf + n, len - n, " ago");
}

static void fmt_units(double v, double base, const char *const *units, size_t nunits, int prec,
		      double limit, char *buf, size_t len)
{
	size_t u = 0;
	while (v >= limit && u + 1 < nunits) {
		v /= base;
		u++;
	}
	snprintf(buf, len, "%.*g%s", prec, v, units[u]);
}

void fmt_size(int64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	/* 999.5 and up would print as "1e+03" with 3 digits: move to the next unit. */
	fmt_units(bytes < 0 ? 0 : (double)bytes, 1000, units, ARRAY_SIZE(units), 3, 999.5, buf,
		  len);
}

void fmt_bytes(int64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	fmt_units(bytes < 0 ? 0 : (double)bytes, 1024, units, ARRAY_SIZE(units), 4, 1024, buf, len);
}

char *fmt_short_id(const char *id)
{
	if (!id)
		return xstrdup("");
	if (strncmp(id, "sha256:", 7) == 0)
		id += 7;
	return xstrndup(id, 12);
}

/* Number of UTF-8 code points (display width for what we print). */
static size_t u8_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Byte length of the first `cps` code points of s. */
static size_t u8_prefix(const char *s, size_t cps)
{
	size_t i = 0, n = 0;
	while (s[i]) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (n == cps)
				break;
			n++;
		}
		i++;
	}
	return i;
}

char *fmt_command(const json_t *argv, size_t max)
{
	struct buf line = BUF_INIT;
	size_t i;
	json_t *a;
	json_array_foreach(argv, i, a)
	{
		const char *s = json_string_value(a);
		if (!s)
			continue;
		if (line.len)
			buf_addc(&line, ' ');
		buf_adds(&line, s);
	}
	struct buf out = BUF_INIT;
	buf_addc(&out, '"');
	if (line.len && u8_width(line.data) > max && max > 0) {
		buf_add(&out, line.data, u8_prefix(line.data, max - 1));
		buf_adds(&out, "…");
	} else if (line.len) {
		buf_adds(&out, line.data);
	}
	buf_addc(&out, '"');
	buf_release(&line);
	return buf_detach(&out, NULL);
}

static int64_t json_time(const json_t *j)
{
	int64_t ns;
	const char *s = json_string_value(j);
	if (!s || time_parse_rfc3339(s, &ns) < 0)
		return 0;
	return ns;
}

/* "Moved to unix:/x 3 minutes ago": where a (moved NAME ...) record says it went, and when. */
static char *moved_status(const json_t *mv, const char *word, int64_t now_ns)
{
	const char *to = json_string_value(json_object_get(mv, "to"));
	int64_t t = json_time(json_object_get(mv, "at"));
	char d[64] = "";
	if (t)
		fmt_ago(t, now_ns, d, sizeof(d));
	return xasprintf("%s to %s%s%s", word, to ? to : "?", t ? " " : "", d);
}

static char *state_status(const json_t *ctr, const char *state, int64_t now_ns);

char *fmt_status(const json_t *ctr, int64_t now_ns)
{
	const char *state = json_string_value(json_object_get(ctr, "state"));
	const json_t *mv = json_object_get(ctr, "moved");
	if (state && strcmp(state, "moved") == 0)
		return moved_status(mv, "Moved", now_ns);
	autofree char *s = state_status(ctr, state, now_ns);
	if (!json_is_object(mv))
		return steal_ptr(&s);
	/* Kept here (migrate --keep) while its declaration went elsewhere. */
	autofree char *m = moved_status(mv, "moved", now_ns);
	return xasprintf("%s; %s", s, m);
}

static char *state_status(const json_t *ctr, const char *state, int64_t now_ns)
{
	long long code = json_integer_value(json_object_get(ctr, "exit_code"));
	char d[64];
	if (!state)
		return xstrdup("Unknown");
	if (strcmp(state, "running") == 0) {
		int64_t t = json_time(json_object_get(ctr, "started_at"));
		if (!t)
			return xstrdup("Up");
		fmt_duration(now_ns > t ? now_ns - t : 0, d, sizeof(d));
		/* "Up 5 minutes (healthy)", as docker ps shows a health check. */
		const char *health = json_string_value(
			json_object_get(json_object_get(ctr, "health"), "status"));
		if (health)
			return xasprintf("Up %s (%s)", d, health);
		return xasprintf("Up %s", d);
	}
	if (strcmp(state, "exited") == 0 || strcmp(state, "restarting") == 0) {
		const char *word = state[0] == 'e' ? "Exited" : "Restarting";
		int64_t t = json_time(json_object_get(ctr, "finished_at"));
		if (!t)
			return xasprintf("%s (%lld)", word, code);
		fmt_ago(t, now_ns, d, sizeof(d));
		return xasprintf("%s (%lld) %s", word, code, d);
	}
	if (strcmp(state, "created") == 0)
		return xstrdup("Created");
	/* An unknown state from a newer daemon: show it as it is. */
	char *s = xstrdup(state);
	if (s[0] >= 'a' && s[0] <= 'z')
		s[0] = (char)(s[0] - 'a' + 'A');
	return s;
}

void table_init(struct table *t, size_t ncols, const char *const *header)
{
	t->ncols = ncols;
	strv_init(&t->cells);
	table_add(t, header);
}

void table_add(struct table *t, const char *const *row)
{
	for (size_t i = 0; i < t->ncols; i++)
		strv_push(&t->cells, row[i] ? row[i] : "");
}

char *table_render(const struct table *t)
{
	size_t nrows = t->ncols ? t->cells.n / t->ncols : 0;
	autofree size_t *w = xcalloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t cw = u8_width(t->cells.v[r * t->ncols + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	struct buf out = BUF_INIT;
	for (size_t r = 0; r < nrows; r++) {
		size_t line_start = out.len;
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells.v[r * t->ncols + c];
			buf_adds(&out, cell);
			if (c + 1 < t->ncols)
				for (size_t pad = u8_width(cell); pad < w[c] + 3; pad++)
					buf_addc(&out, ' ');
		}
		/* No trailing blanks when the last columns are empty. */
		while (out.len > line_start && out.data[out.len - 1] == ' ')
			out.len--;
		out.data[out.len] = '\0';
		buf_addc(&out, '\n');
	}
	return buf_detach(&out, NULL);
}

void table_release(struct table *t)
{
	strv_release(&t->cells);
}

/* "10.88.0.2,10.9.0.3": a container's addresses, one per network ("host" in host mode). */
static char *fmt_addresses(const json_t *net)
{
	struct buf b = {0};
	const char *mode = json_string_value(json_object_get(net, "mode"));
	if (mode && strcmp(mode, "host") == 0)
		buf_adds(&b, "host");
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(net, "networks"), i, e)
	{
		const char *ip = json_string_value(json_object_get(e, "ip"));
		if (ip && *ip)
			buf_addf(&b, "%s%s", b.len ? "," : "", ip);
		const char *ip6 = json_string_value(json_object_get(e, "ip6"));
		if (ip6 && *ip6)
			buf_addf(&b, "%s%s", b.len ? "," : "", ip6);
	}
	buf_addc(&b, '\0');
	return buf_detach(&b, NULL);
}

/* Docker's spelling of published ports: "127.0.0.1:8080->80/tcp, 53->53/udp". */
static char *fmt_ports(const json_t *net)
{
	struct buf b = {0};
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(net, "publish"), i, e)
	{
		const char *p = json_string_value(e);
		const char *colon = p ? strrchr(p, ':') : NULL;
		if (!colon)
			continue;
		buf_addf(&b, "%s%.*s->%s", b.len ? ", " : "", (int)(colon - p), p, colon + 1);
	}
	buf_addc(&b, '\0');
	return buf_detach(&b, NULL);
}

/* "a,b": the string `key` of each object in arr (docker's .Networks, .Mounts). */
static char *join_key(const json_t *arr, const char *key)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		const char *v = json_string_value(json_object_get(e, key));
		if (v)
			buf_addf(&b, "%s%s", b.len ? "," : "", v);
	}
	return buf_detach(&b, NULL);
}

json_t *fmt_ps_fields(const json_t *c, int64_t now_ns, bool full_id)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *fid = json_string_value(json_object_get(c, "id"));
	autofree char *id = full_id ? xstrdup(fid ? fid : "") : fmt_short_id(fid);
	const char *state = json_string_value(json_object_get(c, "state"));
	/* A moved declaration's row knows no command nor kind: the container is elsewhere. */
	bool moved = state && strcmp(state, "moved") == 0;
	autofree char *cmd =
		moved ? xstrdup("")
		      : fmt_command(json_object_get(json_object_get(c, "config"), "command"), 20);
	autofree char *status = fmt_status(c, now_ns);
	autofree char *addrs = fmt_addresses(json_object_get(c, "network"));
	autofree char *ports = fmt_ports(json_object_get(c, "network"));
	const json_t *net = json_object_get(c, "network");
	autofree char *nets = join_key(json_object_get(net, "networks"), "name");
	autofree char *mounts =
		join_key(json_object_get(json_object_get(c, "config"), "volumes"), "source");
	const char *mode = json_string_value(json_object_get(net, "mode"));
	char created[64] = "", running_for[64] = "";
	int64_t ct = json_time(json_object_get(c, "created_at"));
	if (ct) {
		time_fmt_rfc3339(ct, created, sizeof(created));
		fmt_ago(ct, now_ns, running_for, sizeof(running_for));
	}
	json_t *f =
		json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s, s:I, s:s, s:s, s:s, s:s}", "ID",
			  id, "Name", name, "Names", name, "Image",
			  json_string_value(json_object_get(c, "image")), "Command", cmd, "State",
			  json_string_value(json_object_get(c, "state")), "Status", status, "PID",
			  (json_int_t)json_integer_value(json_object_get(c, "pid")), "Address",
			  addrs, "Ports", ports, "CreatedAt", created, "RunningFor", running_for);
	/* Host and no networking have no network names: the mode stands in. */
	json_object_set_new(f, "Networks", json_string(*nets || !mode ? nets : mode));
	json_object_set_new(f, "Mounts", json_string(mounts));
	const char *kind = json_string_value(json_object_get(c, "kind"));
	json_object_set_new(f, "Kind", json_string(kind ? kind : moved ? "" : "native"));
	return f;
}

void fmt_ps_moved(json_t *list, const json_t *moved)
{
	size_t i, j;
	json_t *m, *c;
	json_array_foreach(moved, i, m)
	{
		const char *name = json_string_value(json_object_get(m, "name"));
		if (!name)
			continue;
		json_t *mv = json_pack("{s:O?,s:O?}", "to", json_object_get(m, "to"), "at",
				       json_object_get(m, "at"));
		json_t *here = NULL;
		json_array_foreach(list, j, c)
		{
			const char *n = json_string_value(json_object_get(c, "name"));
			if (n && strcmp(n, name) == 0)
				here = c;
		}
		if (here)
			json_object_set_new(here, "moved", mv);
		else
			json_array_append_new(list, json_pack("{s:s,s:s,s:o}", "name", name,
							      "state", "moved", "moved", mv));
	}
}

char *fmt_ps(const json_t *containers, int64_t now_ns)
{
	static const char *const hdr[] = {"NAME",  "ID",     "IMAGE", "KIND",	 "COMMAND",
					  "STATE", "STATUS", "PID",   "ADDRESS", "PORTS"};
	static const char *const keys[] = {"Name",  "ID",     "Image", "Kind",	  "Command",
					   "State", "Status", "PID",   "Address", "Ports"};
	struct table t;
	table_init(&t, ARRAY_SIZE(hdr), hdr);
	size_t i;
	json_t *c;
	json_array_foreach(containers, i, c)
	{
		json_t *f = fmt_ps_fields(c, now_ns, false);
		long long pid = json_integer_value(json_object_get(f, "PID"));
		char pids[32] = "-";
		if (pid > 0)
			snprintf(pids, sizeof(pids), "%lld", pid);
		const char *row[ARRAY_SIZE(keys)];
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			row[k] = json_string_value(json_object_get(f, keys[k]));
		row[7] = pids;
		table_add(&t, row);
		json_decref(f);
	}
	char *s = table_render(&t);
	table_release(&t);
	return s;
}

/* One row of `images`: the image's name (NULL: it has none) and what shows of it. */
static json_t *image_fields(const json_t *img, const char *name, int64_t now_ns, bool full_id)
{
	const char *fid = json_string_value(json_object_get(img, "id"));
	autofree char *id = full_id ? xstrdup(fid ? fid : "") : fmt_short_id(fid);
	char created[64] = "", since[64] = "";
	int64_t ct = json_time(json_object_get(img, "created"));
	if (ct) {
		time_fmt_rfc3339(ct, created, sizeof(created));
		fmt_ago(ct, now_ns, since, sizeof(since));
	}
	char size[32];
	fmt_size(json_integer_value(json_object_get(img, "size")), size, sizeof(size));
	/* Like an id: the algorithm and 12 hex digits identify it for people. */
	const char *dg = json_string_value(json_object_get(img, "digest"));
	char digest[24] = "<none>";
	if (dg && strlen(dg) > 19)
		snprintf(digest, sizeof(digest), "%.19s", dg);
	/* Names come as name:tag; add the default tag if one is missing. */
	autofree char *full = !name		  ? xstrdup("<none>")
			      : strchr(name, ':') ? xstrdup(name)
						  : xasprintf("%s:latest", name);
	autofree char *repo = xstrdup(full);
	char *colon = name ? strrchr(repo, ':') : NULL;
	const char *tag = "<none>";
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "Name", full,
			 "Repository", repo, "Tag", tag, "Digest", digest, "CreatedAt", created,
			 "CreatedSince", since, "Size", size);
}

void fmt_image_rows(const json_t *images, int64_t now_ns, bool full_id, json_t **items,
		    json_t **extras)
{
	*items = json_array();
	*extras = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
	{
		json_t *names = json_object_get(img, "names");
		size_t n = json_array_size(names);
		for (size_t k = 0; k < (n ? n : 1); k++) {
			const char *name = n ? json_string_value(json_array_get(names, k)) : NULL;
			json_array_append(*items, img);
			json_array_append_new(*extras, image_fields(img, name, now_ns, full_id));
		}
	}
}

char *fmt_images(const json_t *images, int64_t now_ns)
{
	static const char *const hdr[] = {"NAME", "ID", "DIGEST", "CREATED", "SIZE"};
	static const char *const keys[] = {"Name", "ID", "Digest", "CreatedSince", "Size"};
	struct table t;
	table_init(&t, ARRAY_SIZE(hdr), hdr);
	json_t *items, *extras;
	fmt_image_rows(images, now_ns, false, &items, &extras);
	size_t i;
	json_t *f;
	json_array_foreach(extras, i, f)
	{
		const char *row[ARRAY_SIZE(keys)];
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			row[k] = json_string_value(json_object_get(f, keys[k]));
		table_add(&t, row);
	}
	json_decref(items);
	json_decref(extras);
	char *s = table_render(&t);
	table_release(&t);
	return s;
}

static const json_t *find_by_name(const json_t *arr, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(arr, i, s)
	{
		const char *n = json_string_value(json_object_get(s, "name"));
		if (n && name && strcmp(n, name) == 0)
			return s;
	}
	return NULL;
}

char *fmt_stats(const json_t *before, const json_t *after, int64_t interval_ns, int64_t host_mem)
{
	static const char *const hdr[] = {"NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"};
	struct table t;
	table_init(&t, ARRAY_SIZE(hdr), hdr);
	size_t i;
	json_t *s;
	json_array_foreach(after, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		const json_t *b = before ? find_by_name(before, name) : NULL;
		char cpu[32] = "--";
		if (b) {
			int64_t dt = json_time(json_object_get(s, "read_at")) -
				     json_time(json_object_get(b, "read_at"));
			if (dt <= 0)
				dt = interval_ns;
			int64_t du = json_integer_value(json_object_get(s, "cpu_usage_ns")) -
				     json_integer_value(json_object_get(b, "cpu_usage_ns"));
			if (dt > 0 && du >= 0)
				snprintf(cpu, sizeof(cpu), "%.2f%%",
					 (double)du * 100.0 / (double)dt);
		}
		int64_t use = json_integer_value(json_object_get(s, "memory_usage"));
		int64_t lim = json_integer_value(json_object_get(s, "memory_limit"));
		if (lim <= 0 || (host_mem > 0 && lim > host_mem))
			lim = host_mem;
		char u[32], l[32], mem[80], pct[32] = "--";
		fmt_bytes(use, u, sizeof(u));
		fmt_bytes(lim, l, sizeof(l));
		snprintf(mem, sizeof(mem), "%s / %s", u, l);
		if (lim > 0)
			snprintf(pct, sizeof(pct), "%.2f%%", (double)use * 100.0 / (double)lim);
		char pids[32];
		snprintf(pids, sizeof(pids), "%lld",
			 json_integer_value(json_object_get(s, "pids_current")));
		const char *row[] = {name, cpu, mem, pct, pids};
		table_add(&t, row);
	}
	char *out = table_render(&t);
	table_release(&t);
	return out;
}

/* Is s[i] the start of a byte a terminal acts on: C0, DEL, C1 (as UTF-8)? n: its length. */
static bool ctl_at(const unsigned char *s, size_t i, size_t len, size_t *n)
{
	if (s[i] < 0x20 || s[i] == 0x7f) {
		*n = 1;
		return true;
	}
	if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
		*n = 2;
		return true;
	}
	return false;
}

void fmt_add_safe(struct buf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		size_t n;
		if (ctl_at(u, i, len, &n)) {
			for (size_t k = 0; k < n; k++)
				buf_addf(b, "\\%03o", u[i + k]);
			i += n - 1;
		} else if (u[i] == '\\') {
			buf_adds(b, "\\134");
		} else {
			buf_add(b, s + i, 1);
		}
	}
}

/* JSON text with DEL and C1 (which JSON may leave raw) written as \u00XX. */
static void add_json_safe(struct buf *b, const char *j)
{
	const unsigned char *u = (const unsigned char *)j;
	size_t len = strlen(j);
	for (size_t i = 0; i < len; i++) {
		size_t n;
		if (ctl_at(u, i, len, &n)) {
			buf_addf(b, "\\u%04X", n == 1 ? u[i] : u[i + 1]);
			i += n - 1;
		} else {
			buf_add(b, j + i, 1);
		}
	}
}

/*
 * A value for key=value output: strings bare unless they need quotes (or
 * hold control bytes, which are never written raw: a record's strings come
 * from whoever sent a request).
 */
static void add_value(struct buf *b, const json_t *v)
{
	const char *s = json_string_value(v);
	if (s && *s && !strpbrk(s, " \t\n\"=\\")) {
		size_t len = strlen(s), n, i;
		for (i = 0; i < len && !ctl_at((const unsigned char *)s, i, len, &n); i++)
			;
		if (i == len) {
			buf_adds(b, s);
			return;
		}
	}
	char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	add_json_safe(b, d ? d : "?");
	free(d);
}

char *fmt_event(const json_t *ev)
{
	struct buf b = BUF_INIT;
	const char *time = json_string_value(json_object_get(ev, "time"));
	const char *type = json_string_value(json_object_get(ev, "type"));
	const json_t *attrs = json_object_get(ev, "attrs");
	const char *name = json_string_value(json_object_get(ev, "container"));
	if (!name)
		name = json_string_value(json_object_get(ev, "image"));
	if (!name)
		name = json_string_value(json_object_get(attrs, "name"));
	buf_addf(&b, "%s %s %s", time ? time : "-", type ? type : "-", name ? name : "-");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)attrs, k, v)
	{
		if (json_is_null(v))
			continue;
		buf_addf(&b, " %s=", k);
		add_value(&b, v);
	}
	return buf_detach(&b, NULL);
}

char *fmt_audit(const json_t *rec)
{
	struct buf b = BUF_INIT;
	const char *time = json_string_value(json_object_get(rec, "time"));
	const char *event = json_string_value(json_object_get(rec, "event"));
	bool api = event && strcmp(event, "api") == 0;
	fmt_add_safe(&b, time ? time : "-", strlen(time ? time : "-"));
	if (api) {
		const json_t *st = json_object_get(rec, "status");
		const char *m = json_string_value(json_object_get(rec, "method"));
		const char *p = json_string_value(json_object_get(rec, "path"));
		if (json_is_integer(st))
			buf_addf(&b, " %lld", (long long)json_integer_value(st));
		else
			buf_adds(&b, " -");
		buf_addf(&b, " %s ", m ? m : "-");
		if (p)
			add_value(&b, json_object_get(rec, "path"));
		else
			buf_adds(&b, "-");
	} else {
		buf_adds(&b, " ");
		fmt_add_safe(&b, event ? event : "-", strlen(event ? event : "-"));
	}
	static const char *const skip[] = {"time",   "seq",  "event", "status",
					   "method", "path", "route", NULL};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)rec, k, v)
	{
		/* A request's status, method, path and route are on the line already. */
		size_t nskip = api ? 7 : 3;
		bool skipped = json_is_null(v);
		for (size_t i = 0; !skipped && i < nskip; i++)
			skipped = strcmp(k, skip[i]) == 0;
		if (skipped)
			continue;
		buf_adds(&b, " ");
		fmt_add_safe(&b, k, strlen(k));
		buf_adds(&b, "=");
		add_value(&b, v);
	}
	return buf_detach(&b, NULL);
}

static void info_obj(struct buf *b, const json_t *o, int depth)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)o, k, v)
	{
		buf_addf(b, "%*s%s:", depth * 2, "", k);
		if (json_is_object(v)) {
			buf_addc(b, '\n');
			info_obj(b, v, depth + 1);
			continue;
		}
		buf_addc(b, ' ');
		if (json_is_array(v)) {
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				if (i)
					buf_adds(b, ", ");
				add_value(b, e);
			}
		} else if (json_is_null(v)) {
			buf_adds(b, "-");
		} else {
			add_value(b, v);
		}
		buf_addc(b, '\n');
	}
}

char *fmt_info(const json_t *info)
{
	struct buf b = BUF_INIT;
	info_obj(&b, info, 0);
	return buf_detach(&b, NULL);
}

int cri_parse(const char *line, size_t len, struct cri_rec *rec)
{
	const char *end = line + len;
	const char *sp1 = memchr(line, ' ', len);
	if (!sp1 || sp1 == line)
		return -EINVAL;
	const char *stream = sp1 + 1;
	const char *sp2 = memchr(stream, ' ', (size_t)(end - stream));
	if (!sp2)
		return -EINVAL;
	size_t slen = (size_t)(sp2 - stream);
	bool is_err;
	if (slen == 6 && memcmp(stream, "stdout", 6) == 0)
		is_err = false;
	else if (slen == 6 && memcmp(stream, "stderr", 6) == 0)
		is_err = true;
	else
		return -EINVAL;
	const char *tag = sp2 + 1;
	if (tag >= end)
		return -EINVAL;
	/* The tag is F or P, possibly followed by more ':'-separated tags. */
	const char *tag_end = memchr(tag, ' ', (size_t)(end - tag));
	if (!tag_end)
		tag_end = end;
	if (tag[0] != 'F' && tag[0] != 'P')
		return -EINVAL;
	if (tag_end - tag > 1 && tag[1] != ':')
		return -EINVAL;
	rec->time = line;
	rec->time_len = (size_t)(sp1 - line);
	rec->is_stderr = is_err;
	rec->partial = tag[0] == 'P';
	rec->data = tag_end < end ? tag_end + 1 : end;
	rec->data_len = (size_t)(end - rec->data);
	return 0;
}

void logw_init(struct logw *w, bool timestamps)
{
	memset(w, 0, sizeof(*w));
	w->timestamps = timestamps;
	buf_init(&w->line);
}

void logw_release(struct logw *w)
{
	buf_release(&w->line);
}

static void logw_line(struct logw *w, const char *line, size_t len, struct buf *out,
		      struct buf *errb)
{
	struct cri_rec rec;
	if (cri_parse(line, len, &rec) < 0) {
		/* Not a CRI record: show it rather than hide it. */
		buf_add(out, line, len);
		buf_addc(out, '\n');
		return;
	}
	int s = rec.is_stderr ? 1 : 0;
	struct buf *dst = rec.is_stderr ? errb : out;
	if (w->timestamps && !w->mid[s]) {
		buf_add(dst, rec.time, rec.time_len);
		buf_addc(dst, ' ');
	}
	buf_add(dst, rec.data, rec.data_len);
	if (rec.partial) {
		w->mid[s] = true;
	} else {
		buf_addc(dst, '\n');
		w->mid[s] = false;
	}
}

void logw_feed(struct logw *w, const char *data, size_t len, struct buf *out, struct buf *errb)
{
	buf_add(&w->line, data, len);
	size_t start = 0;
	for (;;) {
		const char *nl = memchr(w->line.data + start, '\n', w->line.len - start);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (w->line.data + start));
		logw_line(w, w->line.data + start, n, out, errb);
		start += n + 1;
	}
	buf_consume(&w->line, start);
}

void logw_finish(struct logw *w, struct buf *out, struct buf *errb)
{
	if (w->line.len)
		logw_line(w, w->line.data, w->line.len, out, errb);
	buf_reset(&w->line);
}
