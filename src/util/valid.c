#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

bool valid_name(const char *s)
{
	return s && label_ok(s, strlen(s));
}

bool valid_hostname(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return false;
	const char *p = s;
	for (;;) {
		const char *dot = strchrnul(p, '.');
		if (!label_ok(p, (size_t)(dot - p)))
			return false;
		if (!*dot)
			return true;
		p = dot + 1;
	}
}

/*
 * A registry host before the first '/', as docker tells one from a path
 * component: it holds a '.' or a ':' (a port), or is "localhost". Lowercase
 * DNS characters, and a port of digits.
 */
static bool registry_host(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t hl = colon ? (size_t)(colon - s) : n;
	if (!colon && !memchr(s, '.', n) && !(n == 9 && strncmp(s, "localhost", 9) == 0))
		return false;
	if (hl == 0 || s[0] == '-' || s[0] == '.' || s[hl - 1] == '-' || s[hl - 1] == '.')
		return false;
	for (size_t i = 0; i < hl; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-'))
			return false;
	if (colon) {
		size_t pl = n - hl - 1;
		if (pl == 0 || pl > 5)
			return false;
		for (size_t i = hl + 1; i < n; i++)
			if (s[i] < '0' || s[i] > '9')
				return false;
	}
	return true;
}

bool valid_image_ref(const char *s)
{
	if (!s || !*s || strlen(s) > 255)
		return false;
	const char *first = strchr(s, '/');
	if (first && registry_host(s, (size_t)(first - s)))
		s = first + 1;
	const char *colon = strrchr(s, ':');
	const char *slash = strrchr(s, '/');
	if (colon && slash && colon < slash)
		colon = NULL;
	size_t nlen = colon ? (size_t)(colon - s) : strlen(s);
	if (nlen == 0)
		return false;
	/* Name: lowercase alnum components separated by one of / . _ - */
	for (size_t i = 0; i < nlen; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if (!strchr("/._-", c) || i == 0 || i == nlen - 1)
			return false;
		char prev = s[i - 1];
		if (strchr("/._-", prev) && !(c == '_' && prev == '_'))
			return false;
	}
	if (colon) {
		const char *t = colon + 1;
		size_t tl = strlen(t);
		if (tl == 0 || tl > 128)
			return false;
		for (size_t i = 0; i < tl; i++) {
			char c = t[i];
			if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-')
				return false;
			if (i == 0 && (c == '.' || c == '-'))
				return false;
		}
	}
	return true;
}

bool valid_volume_dest(const char *dest, const char **why)
{
	static const char *const kernel[] = {"proc", "sys", "dev"};
	if (!fs_path_is_clean_abs(dest)) {
		*why = "must be an absolute path without . or ..";
		return false;
	}
	const char *p = dest;
	while (*p == '/')
		p++;
	if (!*p) {
		*why = "cannot be / (the container's root file system)";
		return false;
	}
	size_t n = strcspn(p, "/");
	for (size_t i = 0; i < sizeof(kernel) / sizeof(kernel[0]); i++)
		if (n == strlen(kernel[i]) && strncmp(p, kernel[i], n) == 0) {
			*why = "cannot be /proc, /sys, /dev or a path below them (the runtime "
			       "mounts those, masked, read-only and with a device allow-list)";
			return false;
		}
	return true;
}

int parse_size(const char *s, int64_t *out, struct clbsd_err *err)
{
	if (!s || !*s)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"size is empty; expected a number with an optional unit "
					"k, M, G or T, like 256M");
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		goto bad;
	errno = 0;
	char *end;
	double v = strtod(p, &end);
	if (errno || end == p)
		goto bad;
	int64_t mult = 1;
	if (*end) {
		switch (tolower((unsigned char)*end)) {
		case 'b':
			mult = 1;
			break;
		case 'k':
			mult = 1LL << 10;
			break;
		case 'm':
			mult = 1LL << 20;
			break;
		case 'g':
			mult = 1LL << 30;
			break;
		case 't':
			mult = 1LL << 40;
			break;
		default:
			goto bad;
		}
		end++;
		if (mult > 1 && (strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0))
			end += strlen(end);
		if (*end)
			goto bad;
	}
	double bytes = v * (double)mult;
	if (bytes < 0 || bytes > 9.0e18)
		goto bad;
	if (v > 0 && bytes < 1)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"invalid size \"%s\": it is less than one byte (0 would "
					"mean no limit); give at least 1",
					s);
	*out = (int64_t)bytes;
	return 0;
bad:
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"invalid size \"%s\": expected a number with an optional unit "
				"k, M, G or T, like 256M",
				s);
}

int parse_duration(const char *s, int64_t *out, struct clbsd_err *err)
{
	if (!s || !*s)
		goto bad;
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (errno || end == p)
			goto bad;
		double mult;
		if (strncmp(end, "ms", 2) == 0) {
			mult = 1e6;
			end += 2;
		} else if (strncmp(end, "us", 2) == 0) {
			mult = 1e3;
			end += 2;
		} else if (strncmp(end, "ns", 2) == 0) {
			mult = 1;
			end += 2;
		} else if (*end == 's') {
			mult = 1e9;
			end++;
		} else if (*end == 'm') {
			mult = 60e9;
			end++;
		} else if (*end == 'h') {
			mult = 3600e9;
			end++;
		} else if (*end == 'd') {
			mult = 86400e9;
			end++;
		} else {
			goto bad;
		}
		/* Refuse what int64 nanoseconds cannot hold (about 292 years)
		   rather than cast an out-of-range double, which is undefined. */
		double ns = v * mult;
		if (!(ns < 9.2e18) || (double)total + ns >= 9.2e18)
			goto bad;
		total += (int64_t)ns;
		p = end;
	}
	*out = total;
	return 0;
bad:
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"invalid duration \"%s\": expected a number with a unit "
				"ms, s, m, h or d, like 10s or 1h30m",
				s ? s : "");
}

static const struct {
	const char *name;
	int sig;
} sigs[] = {
	{"HUP", SIGHUP},       {"INT", SIGINT},	  {"QUIT", SIGQUIT},   {"ILL", SIGILL},
	{"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
	{"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
	{"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
	{"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
	{"TTOU", SIGTTOU},     {"URG", SIGURG},	  {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
	{"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
	{"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int parse_signal(const char *s, int *out)
{
	if (!s || !*s)
		return -EINVAL;
	long long n;
	if (parse_int(s, 1, 64, &n) == 0) {
		*out = (int)n;
		return 0;
	}
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		if (strcasecmp(name, sigs[i].name) == 0) {
			*out = sigs[i].sig;
			return 0;
		}
	}
	return -EINVAL;
}

const char *signal_name(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigs[i].sig == sig)
			return sigs[i].name;
	return "?";
}

int parse_int(const char *s, long long min, long long max, long long *out)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- domains and URL paths (the ingress renders them; the configuration checks them) ---- */

static bool why_refuse(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool why_refuse(char *why, size_t n, const char *fmt, ...)
{
	if (why && n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool dns_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool valid_domain_check(const char *s, char *why, size_t n)
{
	static const char *const expected =
		"expected a DNS name like \"web.home.lan\" or \"*.home.lan\" "
		"(labels of a-z, 0-9 and '-')";
	if (!s || !*s)
		return why_refuse(why, n, "empty domain; %s", expected);
	size_t len = strlen(s);
	if (len > 253)
		return why_refuse(why, n, "domain \"%.40s...\" is %zu characters long; at most 253",
				  s, len);
	const char *p = s;
	if (p[0] == '*') {
		if (p[1] != '.' || !p[2])
			return why_refuse(why, n,
					  "invalid domain \"%.80s\": a wildcard is \"*.\" and a "
					  "name, like \"*.home.lan\"",
					  s);
		p += 2;
	}
	for (;;) {
		const char *dot = strchrnul(p, '.');
		size_t l = (size_t)(dot - p);
		if (l == 0)
			return why_refuse(why, n, "invalid domain \"%.80s\": empty label; %s", s,
					  expected);
		if (l > 63)
			return why_refuse(why, n,
					  "invalid domain \"%.80s\": a label is longer than 63 "
					  "characters",
					  s);
		for (size_t i = 0; i < l; i++) {
			char c = p[i];
			if (c >= 'A' && c <= 'Z')
				return why_refuse(why, n,
						  "invalid domain \"%.80s\": write it in "
						  "lowercase",
						  s);
			if (dns_alnum(c))
				continue;
			if (c == '-' && i > 0 && i < l - 1)
				continue;
			if (c == '-')
				return why_refuse(why, n,
						  "invalid domain \"%.80s\": a label cannot "
						  "start or end with '-'",
						  s);
			if (c == '*')
				return why_refuse(why, n,
						  "invalid domain \"%.80s\": '*' is allowed only "
						  "as the whole first label",
						  s);
			return why_refuse(why, n,
					  "invalid domain \"%.80s\": character '%c' is not "
					  "allowed; %s",
					  s, c, expected);
		}
		if (!*dot)
			return true;
		p = dot + 1;
	}
}

bool valid_url_path_check(const char *s, char *why, size_t n)
{
	static const char *const expected =
		"expected a URL path like \"/app\" (letters, digits and ._~%/-)";
	if (!s || s[0] != '/')
		return why_refuse(why, n, "invalid path \"%.80s\": %s", s ? s : "", expected);
	size_t len = strlen(s);
	if (len > 256)
		return why_refuse(why, n, "path \"%.40s...\" is %zu characters long; at most 256",
				  s, len);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = dns_alnum(c) || (c >= 'A' && c <= 'Z');
		if (!alnum && !strchr("._~%/-", c))
			return why_refuse(why, n,
					  "invalid path \"%.80s\": character '%c' is not "
					  "allowed; %s",
					  s, c, expected);
	}
	if (strstr(s, "//"))
		return why_refuse(why, n, "invalid path \"%.80s\": empty segment (\"//\")", s);
	/* "." and ".." segments would be resolved away by clients and nginx. */
	const char *p = s;
	while (p && *p) {
		p++;
		const char *e = strchrnul(p, '/');
		size_t l = (size_t)(e - p);
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return why_refuse(why, n,
					  "invalid path \"%.80s\": \".\" and \"..\" segments "
					  "are not allowed",
					  s);
		p = *e ? e : NULL;
	}
	return true;
}
