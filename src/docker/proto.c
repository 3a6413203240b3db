/*
 * The Engine API's pure parts: stdcopy framing, label filters, query
 * escaping, error mapping, times.
 */
#include "docker/docker.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dk_demux_feed(struct dk_demux *m, const char *data, size_t n, dk_frame_fn fn, void *arg)
{
	while (n) {
		if (m->left) {
			size_t k = n < m->left ? n : m->left;
			fn(m->stream, data, k, arg);
			m->left -= (uint32_t)k;
			data += k;
			n -= k;
			continue;
		}
		size_t k = sizeof(m->hdr) - m->hlen;
		if (k > n)
			k = n;
		memcpy(m->hdr + m->hlen, data, k);
		m->hlen += k;
		data += k;
		n -= k;
		if (m->hlen < sizeof(m->hdr))
			break;
		if (m->hdr[0] > 3 || m->hdr[1] || m->hdr[2] || m->hdr[3])
			return -EPROTO;
		m->stream = m->hdr[0];
		m->left = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 |
			  (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
		m->hlen = 0;
	}
	return 0;
}

bool dk_demux_idle(const struct dk_demux *m)
{
	return m->hlen == 0 && m->left == 0;
}

char *dk_query_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf_addc(&b, (char)*p);
		} else {
			buf_addc(&b, '%');
			buf_addc(&b, hex[*p >> 4]);
			buf_addc(&b, hex[*p & 15]);
		}
	}
	return buf_detach(&b, NULL);
}

char *dk_label_filters(char *const *labels)
{
	json_t *arr = json_array();
	for (size_t i = 0; labels && labels[i]; i++)
		json_array_append_new(arr, json_string(labels[i]));
	json_t *f = json_pack("{s:o}", "label", arr);
	char *text = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	return text;
}

int dk_err_status(long status, const char *body, size_t len, const char *what,
		  struct clbsd_err *err)
{
	enum clbsd_err_kind kind = CLBSD_E_INTERNAL;
	int code = EIO;
	switch (status) {
	case 400:
		kind = CLBSD_E_INVALID;
		code = EINVAL;
		break;
	case 404:
		kind = CLBSD_E_NOTFOUND;
		code = ENOENT;
		break;
	case 409:
		kind = CLBSD_E_CONFLICT;
		code = EEXIST;
		break;
	default:
		break;
	}
	autofree char *msg = NULL;
	json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (m) {
		msg = xstrdup(m);
	} else if (body && len) {
		/* Not JSON: the start of the text, one line. */
		size_t n = len > 200 ? 200 : len;
		msg = xstrndup(body, n);
		for (char *p = msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	json_decref(j);
	/* Trim a trailing newline dockerd leaves on some messages. */
	if (msg) {
		size_t n = strlen(msg);
		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
	}
	return clbsd_err_setmsg(err, kind, code, "%s: %ld: %s", what, status,
				msg && *msg ? msg : "(no message)");
}

int64_t dk_time_ns(const char *s)
{
	int64_t ns;
	if (!s || strncmp(s, "0001-01-01", 10) == 0)
		return 0;
	if (time_parse_rfc3339(s, &ns) < 0)
		return 0;
	return ns;
}
