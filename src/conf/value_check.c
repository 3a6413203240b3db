/*
 * Value checkers for the configuration forms: each names the key, what it
 * expected and what it got, at the value's position.
 */
#include "conf/value_check.h"
#include "util/netaddr.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void verr(struct vctx *c, const struct sexp *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	conf_diags_add(c->diags, at->file, at->line, at->col, "%s: %s", c->what, msg);
}

void vexpect(struct vctx *c, const char *key, const struct sexp *x, const char *expected)
{
	autofree char *got = sexp_describe(x);
	verr(c, x, "%s: expected %s, got %s", key, expected, got);
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 64;
	/* Optimal string alignment: a swap of two neighbours counts as one edit. */
	unsigned short d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned short)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned short)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (size_t)(a[i - 1] != b[j - 1]);
			if ((size_t)d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if ((size_t)d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    (size_t)d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = (unsigned short)best;
		}
	}
	return d[la][lb];
}

const char *did_you_mean(const char *word, const char *const *names)
{
	const char *best = NULL;
	size_t bestd = 0;
	size_t limit = strlen(word) <= 4 ? 1 : strlen(word) <= 8 ? 2 : 3;
	for (size_t i = 0; names[i]; i++) {
		size_t d = edit_distance(word, names[i]);
		if (d <= limit && (!best || d < bestd)) {
			best = names[i];
			bestd = d;
		}
	}
	return best;
}

void walk_plist(struct vctx *c, const struct sexp *list, size_t start, const char *const *keys,
		const char *where, plist_fn fn, void *obj)
{
	size_t nkeys = 0;
	while (keys[nkeys])
		nkeys++;
	const struct sexp *seen[64] = {0};
	const char *sep = *where ? " " : "";
	if (list->tail)
		verr(c, list->tail,
		     "%s%sunexpected '.' in a property list; expected :key value "
		     "pairs",
		     where, *where ? ": " : "");
	for (size_t i = start; i < list->n; i += 2) {
		const struct sexp *k = list->items[i];
		if (k->type != SEXP_KEYWORD) {
			autofree char *got = sexp_describe(k);
			if (k->type == SEXP_SYMBOL) {
				const char *m = did_you_mean(k->str, keys);
				if (m && strcmp(m, k->str) == 0) {
					verr(c, k, "%s%sexpected a keyword, got %s; write :%s",
					     where, *where ? ": " : "", got, m);
					continue;
				}
			}
			verr(c, k, "%s%sexpected a keyword like :%s, got %s", where,
			     *where ? ": " : "", keys[0], got);
			/* Resynchronise on the next keyword. */
			i--;
			continue;
		}
		size_t idx = 0;
		while (idx < nkeys && strcmp(keys[idx], k->str) != 0)
			idx++;
		if (i + 1 >= list->n) {
			verr(c, k, "%s%s:%s: missing value after the key", where, sep, k->str);
			return;
		}
		const struct sexp *v = list->items[i + 1];
		if (idx == nkeys) {
			const char *m = did_you_mean(k->str, keys);
			if (m)
				verr(c, k, "%s%sunknown key :%s; did you mean :%s?", where,
				     *where ? ": " : "", k->str, m);
			else
				verr(c, k, "%s%sunknown key :%s", where, *where ? ": " : "",
				     k->str);
			continue;
		}
		if (idx < ARRAY_SIZE(seen) && seen[idx]) {
			verr(c, k, "%s%s:%s: duplicate key; first given at %d:%d", where, sep,
			     k->str, seen[idx]->line, seen[idx]->col);
			continue;
		}
		if (idx < ARRAY_SIZE(seen))
			seen[idx] = k;
		fn(c, obj, (int)idx, v, k);
	}
}

bool is_sym(const struct sexp *x, const char *name)
{
	return x->type == SEXP_SYMBOL && strcmp(x->str, name) == 0;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

bool chk_string(struct vctx *c, const char *key, const struct sexp *x, bool allow_empty, char **out)
{
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, "a string");
		return false;
	}
	if (!allow_empty && x->len == 0) {
		verr(c, x, "%s: expected a non-empty string", key);
		return false;
	}
	*out = xstrdup(x->str);
	return true;
}

bool chk_name(struct vctx *c, const char *key, const struct sexp *x, char **out)
{
	const char *s = NULL;
	char num[32];
	if (x->type == SEXP_SYMBOL || x->type == SEXP_STRING) {
		s = x->str;
	} else if (x->type == SEXP_INT && x->i >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)x->i);
		s = num;
	}
	if (!s) {
		vexpect(c, key, x, "a name (a symbol or string)");
		return false;
	}
	if (!valid_name(s)) {
		verr(c, x,
		     "%s: invalid name \"%.80s\"; expected a DNS label: 1-63 lowercase letters, "
		     "digits and '-', not starting or ending with '-', like web-1",
		     key, s);
		return false;
	}
	*out = xstrdup(s);
	return true;
}

bool chk_bool(struct vctx *c, const char *key, const struct sexp *x, bool *out)
{
	if (is_sym(x, "t")) {
		*out = true;
		return true;
	}
	if (is_sym(x, "nil") || (x->type == SEXP_LIST && x->n == 0 && !x->tail)) {
		*out = false;
		return true;
	}
	vexpect(c, key, x, "t or nil");
	return false;
}

bool chk_int(struct vctx *c, const char *key, const struct sexp *x, long long min, long long max,
	     long long *out)
{
	if (x->type != SEXP_INT) {
		vexpect(c, key, x, "an integer");
		return false;
	}
	if (x->i < min || x->i > max) {
		verr(c, x, "%s: %lld is out of range; expected %lld-%lld", key, (long long)x->i,
		     min, max);
		return false;
	}
	*out = x->i;
	return true;
}

bool chk_port(struct vctx *c, const char *key, const struct sexp *x, int *out)
{
	if (x->type != SEXP_INT) {
		vexpect(c, key, x, "a port number 1-65535");
		return false;
	}
	if (x->i < 1 || x->i > 65535) {
		verr(c, x, "%s: port %lld is out of range; expected 1-65535", key, (long long)x->i);
		return false;
	}
	*out = (int)x->i;
	return true;
}

/* digits[.digits] then an optional unit: what parse_size() reads, without the surprises of strtod. */
static bool size_syntax(const char *s)
{
	const char *p = s;
	size_t d = 0;
	while (*p >= '0' && *p <= '9')
		p++, d++;
	if (d == 0 || d > 19)
		return false;
	if (*p == '.') {
		p++;
		size_t f = 0;
		while (*p >= '0' && *p <= '9')
			p++, f++;
		if (f == 0 || f > 9)
			return false;
	}
	return strspn(p, "kKmMgGtTiIbB") == strlen(p) && strlen(p) <= 3;
}

bool chk_size(struct vctx *c, const char *key, const struct sexp *x, int64_t *out)
{
	static const char *const expected =
		"a size: a number with an optional unit k, M, G or T (1024-based), like \"256M\"";
	if (x->type == SEXP_INT) {
		if (x->i < 0) {
			verr(c, x, "%s: size %lld is negative; expected %s", key, (long long)x->i,
			     expected);
			return false;
		}
		*out = x->i;
		return true;
	}
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, expected);
		return false;
	}
	struct clbsd_err err;
	int64_t v;
	if (!size_syntax(x->str)) {
		verr(c, x,
		     "%s: invalid size \"%.40s\"; expected a number with an optional unit k, M, G "
		     "or T (1024-based), like \"256M\"",
		     key, x->str);
		return false;
	}
	if (parse_size(x->str, &v, &err) < 0) {
		/* Well formed but not a size ("0.0000001": less than a byte). */
		verr(c, x, "%s: %s", key, err.msg);
		return false;
	}
	*out = v;
	return true;
}

/* (digits[.digits](ns|us|ms|s|m|h|d))+ with a bound on the total, so parse_duration() cannot overflow. */
static bool duration_syntax(const char *s)
{
	const char *p = s;
	double total = 0;
	if (!*p)
		return false;
	while (*p) {
		char *end;
		if (*p < '0' || *p > '9')
			return false;
		size_t d = strspn(p, "0123456789");
		if (d > 12)
			return false;
		if (p[d] == '.' && (p[d + 1] < '0' || p[d + 1] > '9'))
			return false;
		double v = strtod(p, &end);
		if (end != p + d + (p[d] == '.' ? 1 + strspn(p + d + 1, "0123456789") : 0))
			return false;
		double mult;
		if (!strncmp(end, "ns", 2))
			mult = 1, end += 2;
		else if (!strncmp(end, "us", 2))
			mult = 1e3, end += 2;
		else if (!strncmp(end, "ms", 2))
			mult = 1e6, end += 2;
		else if (*end == 's')
			mult = 1e9, end++;
		else if (*end == 'm')
			mult = 60e9, end++;
		else if (*end == 'h')
			mult = 3600e9, end++;
		else if (*end == 'd')
			mult = 86400e9, end++;
		else
			return false;
		total += v * mult;
		p = end;
	}
	return total < 3.2e17; /* about ten years */
}

bool chk_duration(struct vctx *c, const char *key, const struct sexp *x, int64_t *out)
{
	static const char *const expected =
		"a duration: a number with a unit ms, s, m, h or d, like \"10s\" or \"1h30m\"";
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, expected);
		return false;
	}
	struct clbsd_err err;
	int64_t v;
	if (!duration_syntax(x->str) || parse_duration(x->str, &v, &err) < 0) {
		verr(c, x,
		     "%s: invalid duration \"%.40s\"; expected a number with a unit ms, s, m, h "
		     "or d, like \"10s\" or \"1h30m\" (at most ten years)",
		     key, x->str);
		return false;
	}
	*out = v;
	return true;
}

bool chk_abs_path(struct vctx *c, const char *key, const struct sexp *x, char **out)
{
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, "an absolute path (a string like \"/srv/data\")");
		return false;
	}
	if (!fs_path_is_clean_abs(x->str) || has_ctl(x->str) || x->len > 4095) {
		verr(c, x,
		     "%s: invalid path \"%.80s\"; expected an absolute path without \".\" or "
		     "\"..\" "
		     "components or control characters",
		     key, x->str);
		return false;
	}
	struct buf b = BUF_INIT;
	for (const char *p = x->str; *p; p++)
		if (!(*p == '/' && (p[1] == '/' || (p[1] == '\0' && b.len > 0))))
			buf_addc(&b, *p);
	if (b.len == 0)
		buf_addc(&b, '/');
	*out = buf_detach(&b, NULL);
	return true;
}

bool chk_list(struct vctx *c, const char *key, const struct sexp *x, const char *expected)
{
	if (x->type == SEXP_SYMBOL && strcmp(x->str, "nil") == 0)
		return true; /* nil is the empty list */
	if (x->type != SEXP_LIST || x->tail) {
		vexpect(c, key, x, expected);
		return false;
	}
	return true;
}

bool chk_strings(struct vctx *c, const char *key, const struct sexp *x, size_t min_n, char ***out)
{
	static const char *const expected = "a list of strings, like (\"/bin/httpd\" \"-f\")";
	if (!chk_list(c, key, x, expected))
		return false;
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	if (n < min_n) {
		verr(c, x, "%s: expected a list of at least %zu string%s", key, min_n,
		     min_n == 1 ? "" : "s");
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		if (x->items[i]->type != SEXP_STRING) {
			vexpect(c, key, x->items[i], "a string in the list");
			ok = false;
		}
	}
	if (!ok)
		return false;
	char **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = xstrdup(x->items[i]->str);
	*out = v;
	return true;
}

void conf_kvs_free(struct conf_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf_kv *)a)->key, ((const struct conf_kv *)b)->key);
}

static bool env_key_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

bool chk_pairs(struct vctx *c, const char *key, const struct sexp *x, struct conf_kv **out,
	       size_t *n)
{
	static const char *const expected = "a list of (\"NAME\" . \"value\") pairs";
	if (!chk_list(c, key, x, expected))
		return false;
	size_t cnt = x->type == SEXP_LIST ? x->n : 0;
	struct conf_kv *v = xcalloc(cnt + 1, sizeof(*v));
	const struct sexp **where = xcalloc(cnt + 1, sizeof(*where));
	size_t got = 0;
	bool ok = true;
	for (size_t i = 0; i < cnt; i++) {
		const struct sexp *p = x->items[i];
		if (p->type != SEXP_LIST || p->n != 1 || !p->tail ||
		    p->items[0]->type != SEXP_STRING || p->tail->type != SEXP_STRING) {
			vexpect(c, key, p, "a (\"NAME\" . \"value\") pair of strings");
			ok = false;
			continue;
		}
		const char *k = p->items[0]->str;
		if (!env_key_ok(k)) {
			verr(c, p->items[0],
			     "%s: invalid name \"%.80s\"; expected letters, digits and '_', not "
			     "starting with a digit",
			     key, k);
			ok = false;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < got; j++) {
			if (strcmp(v[j].key, k) == 0) {
				verr(c, p->items[0],
				     "%s: duplicate name \"%s\"; first given at %d:%d", key, k,
				     where[j]->line, where[j]->col);
				dup = true;
				ok = false;
			}
		}
		if (dup)
			continue;
		where[got] = p->items[0];
		v[got].key = xstrdup(k);
		v[got].value = xstrdup(p->tail->str);
		got++;
	}
	free(where);
	if (!ok) {
		conf_kvs_free(v, got);
		return false;
	}
	qsort(v, got, sizeof(*v), kv_cmp);
	*out = v;
	*n = got;
	return true;
}

bool parse_ipv4(const char *s, uint32_t *out)
{
	uint32_t a = 0;
	for (int part = 0; part < 4; part++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned v = 0;
		size_t d = 0;
		while (*s >= '0' && *s <= '9') {
			if (d == 1 && v == 0)
				return false; /* no leading zeros: they read as octal elsewhere */
			v = v * 10 + (unsigned)(*s - '0');
			if (++d > 3 || v > 255)
				return false;
			s++;
		}
		a = (a << 8) | v;
		if (part < 3 && *s++ != '.')
			return false;
	}
	if (*s)
		return false;
	*out = a;
	return true;
}

bool chk_cidr6(struct vctx *c, const char *key, const struct sexp *x, char **out)
{
	static const char *const expected = "an IPv6 subnet like \"fd00:88::/64\"";
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, expected);
		return false;
	}
	struct net_prefix p;
	struct clbsd_err err;
	if (!strchr(x->str, '/') || net_prefix_parse(x->str, &p, &err) < 0 ||
	    p.addr.family != AF_INET6) {
		verr(c, x, "%s: invalid subnet \"%.60s\"; expected %s", key, x->str, expected);
		return false;
	}
	if (p.len < 64 || p.len > 120) {
		verr(c, x, "%s: prefix /%u of \"%s\" is out of range; expected /64 to /120", key,
		     p.len, x->str);
		return false;
	}
	char buf[NET_PREFIX_STRLEN];
	free(*out);
	*out = xstrdup(net_prefix_fmt(&p, buf));
	return true;
}

bool chk_cidr(struct vctx *c, const char *key, const struct sexp *x, struct conf_cidr *out)
{
	static const char *const expected = "an IPv4 subnet like \"10.88.0.0/24\"";
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, expected);
		return false;
	}
	const char *slash = strchr(x->str, '/');
	autofree char *addr = slash ? xstrndup(x->str, (size_t)(slash - x->str)) : NULL;
	uint32_t a;
	long long pfx;
	if (!slash || !parse_ipv4(addr, &a) || parse_int(slash + 1, 0, 32, &pfx) < 0 ||
	    slash[1] == '+' || slash[1] == '-' || slash[1] == ' ') {
		verr(c, x, "%s: invalid subnet \"%.60s\"; expected %s", key, x->str, expected);
		return false;
	}
	if (pfx < 8 || pfx > 30) {
		verr(c, x, "%s: prefix /%lld of \"%s\" is out of range; expected /8 to /30", key,
		     pfx, x->str);
		return false;
	}
	uint32_t mask = (uint32_t)(0xffffffffu << (32 - pfx));
	if (a & ~mask) {
		verr(c, x,
		     "%s: \"%s\" has host bits set; expected the network address %u.%u.%u.%u/%lld",
		     key, x->str, (a & mask) >> 24, ((a & mask) >> 16) & 255,
		     ((a & mask) >> 8) & 255, (a & mask) & 255, pfx);
		return false;
	}
	*out = (struct conf_cidr){.set = true, .addr = a, .prefix = (int)pfx};
	return true;
}

bool chk_hostname(struct vctx *c, const char *key, const struct sexp *x, char **out)
{
	if (x->type != SEXP_STRING && x->type != SEXP_SYMBOL) {
		vexpect(c, key, x, "a DNS name (a string like \"web.home.lan\")");
		return false;
	}
	if (!valid_hostname(x->str)) {
		verr(c, x,
		     "%s: invalid DNS name \"%.80s\"; expected labels of lowercase letters, digits "
		     "and '-' joined by dots, like \"web.home.lan\"",
		     key, x->str);
		return false;
	}
	*out = xstrdup(x->str);
	return true;
}

static bool v6_ok(const char *s, size_t n)
{
	if (n < 2 || n > 39 || !memchr(s, ':', n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF:.", s[i]))
			return false;
	return true;
}

bool chk_listen(struct vctx *c, const char *key, const struct sexp *x, char **out)
{
	static const char *const expected =
		"an address and port like \"0.0.0.0:80\" or \"[::]:443\"";
	if (x->type != SEXP_STRING) {
		vexpect(c, key, x, expected);
		return false;
	}
	const char *s = x->str;
	const char *colon = strrchr(s, ':');
	bool ok = false;
	long long port;
	if (colon && parse_int(colon + 1, 1, 65535, &port) == 0 && colon[1] >= '0' &&
	    colon[1] <= '9') {
		if (s[0] == '[') {
			ok = colon > s + 1 && colon[-1] == ']' &&
			     v6_ok(s + 1, (size_t)(colon - s - 2));
		} else {
			autofree char *ip = xstrndup(s, (size_t)(colon - s));
			uint32_t a;
			ok = parse_ipv4(ip, &a);
		}
	}
	if (!ok) {
		verr(c, x, "%s: invalid listen address \"%.80s\"; expected %s", key, s, expected);
		return false;
	}
	*out = xstrdup(s);
	return true;
}

/* ---- canonical spellings ---- */

char *conf_size_str(int64_t bytes)
{
	static const struct {
		char unit;
		int shift;
	} units[] = {{'T', 40}, {'G', 30}, {'M', 20}, {'k', 10}};
	if (bytes > 0)
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if ((bytes & ((1LL << units[i].shift) - 1)) == 0)
				return xasprintf("%lld%c", (long long)(bytes >> units[i].shift),
						 units[i].unit);
	return xasprintf("%lld", (long long)bytes);
}

char *conf_duration_str(int64_t ns)
{
	static const struct {
		const char *unit;
		int64_t ns;
	} units[] = {{"d", 86400000000000LL}, {"h", 3600000000000LL}, {"m", 60000000000LL},
		     {"s", 1000000000LL},     {"ms", 1000000LL},      {"us", 1000LL}};
	if (ns > 0)
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (ns % units[i].ns == 0)
				return xasprintf("%lld%s", (long long)(ns / units[i].ns),
						 units[i].unit);
	return ns == 0 ? xstrdup("0s") : xasprintf("%lldns", (long long)ns);
}
