/*
 * The outer container of a host archive (docs/host.md): a plain ustar
 * file, so that `tar tvf` lists it, written and read here without a
 * library. Members are regular files only, named by the writer (never by
 * the archive on reading: host import looks members up by the names its
 * manifest lists and refuses any other), at most 99 bytes long.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define BLOCK 512

/* An octal field of width w (with its NUL), or base-256 when it does not fit. */
static void octal(char *f, size_t w, uint64_t v)
{
	if (w == 12 && v >= 077777777777ULL) {
		memset(f, 0, w);
		f[0] = (char)0x80;
		for (size_t i = w - 1; i > 0 && v; i--, v >>= 8)
			f[i] = (char)(v & 0xff);
		return;
	}
	snprintf(f, w, "%0*llo", (int)w - 1, (unsigned long long)v);
}

static uint64_t octal_get(const char *f, size_t w)
{
	uint64_t v = 0;
	if ((unsigned char)f[0] & 0x80) {
		for (size_t i = 1; i < w; i++)
			v = (v << 8) | (unsigned char)f[i];
		return v;
	}
	for (size_t i = 0; i < w && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static void header(char h[BLOCK], const char *name, uint64_t size, int64_t mtime)
{
	memset(h, 0, BLOCK);
	snprintf(h, 100, "%s", name);
	octal(h + 100, 8, 0600);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, (uint64_t)mtime);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < BLOCK; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 7, "%06o", sum);
}

static int wr(struct host_tarw *w, const void *p, size_t n, struct clbsd_err *err)
{
	int r = write_all(w->fd, p, n);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "write %s", w->path);
	w->off += (off_t)n;
	return 0;
}

static int pad(struct host_tarw *w, uint64_t size, struct clbsd_err *err)
{
	static const char zero[BLOCK];
	size_t rest = (size_t)(size % BLOCK);
	return rest ? wr(w, zero, BLOCK - rest, err) : 0;
}

static void canonical_hex(XXH128_hash_t h, char hex[33])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
}

/* The digest of x in hex (when hex is not NULL); x is freed. */
static void digest_hex(XXH3_state_t *x, char *hex)
{
	XXH128_hash_t h = XXH3_128bits_digest(x);
	XXH3_freeState(x);
	if (hex)
		canonical_hex(h, hex);
}

int host_tar_add_mem(struct host_tarw *w, const char *name, const void *data, size_t len,
		     char hex[33], struct clbsd_err *err)
{
	char h[BLOCK];
	header(h, name, len, time(NULL));
	if (wr(w, h, BLOCK, err) < 0 || wr(w, data, len, err) < 0 || pad(w, len, err) < 0)
		return -err->code;
	if (hex)
		host_xxh3_hex(data, len, hex);
	return 0;
}

int host_tar_add_file(struct host_tarw *w, const char *name, const char *path, char hex[33],
		      uint64_t *size, struct clbsd_err *err)
{
	int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	off_t len = lseek(in, 0, SEEK_END);
	if (len < 0 || lseek(in, 0, SEEK_SET) < 0) {
		close(in);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "seek %s", path);
	}
	char h[BLOCK];
	header(h, name, (uint64_t)len, time(NULL));
	int r = wr(w, h, BLOCK, err);
	XXH3_state_t *x = XXH3_createState();
	XXH3_128bits_reset(x);
	size_t cap = 1 << 20;
	autofree char *buf = xmalloc(cap);
	uint64_t done = 0;
	while (r == 0 && done < (uint64_t)len) {
		ssize_t n = read(in, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EIO, "read %s",
					  path);
			break;
		}
		XXH3_128bits_update(x, buf, (size_t)n);
		r = wr(w, buf, (size_t)n, err);
		done += (uint64_t)n;
	}
	close(in);
	if (r == 0)
		r = pad(w, (uint64_t)len, err);
	digest_hex(x, r == 0 ? hex : NULL);
	if (r < 0)
		return r;
	*size = (uint64_t)len;
	return 0;
}

int host_tar_end(struct host_tarw *w, struct clbsd_err *err)
{
	static const char zero[2 * BLOCK];
	return wr(w, zero, sizeof(zero), err);
}

void host_xxh3_hex(const void *data, size_t len, char hex[33])
{
	canonical_hex(XXH3_128bits(data, len), hex);
}

/*
 * A member header at byte off of path: 0 with *m (its name and size), 1 for
 * the end of the archive (a block of zeros), CONFLICT when it is damaged.
 */
static int header_parse(const char h[BLOCK], off_t off, const char *path, struct host_member *m,
			struct clbsd_err *err)
{
	static const char zero[BLOCK];
	if (memcmp(h, zero, BLOCK) == 0)
		return 1;
	unsigned want = (unsigned)octal_get(h + 148, 8), sum = 0;
	for (int i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
	if (sum != want || (h[156] != '0' && h[156] != 0) || !memchr(h, 0, 100))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s is damaged: a bad member header at byte %lld "
					"(a host archive holds regular files only)",
					path, (long long)off);
	*m = (struct host_member){.size = octal_get(h + 124, 12), .data = off + BLOCK};
	memcpy(m->name, h, sizeof(m->name) - 1);
	m->name[sizeof(m->name) - 1] = 0;
	return 0;
}

int host_tar_list(int fd, const char *path, struct host_member **out, size_t *n,
		  struct clbsd_err *err)
{
	struct host_member *m = NULL;
	size_t k = 0, cap = 0;
	off_t off = 0, end = lseek(fd, 0, SEEK_END);
	char h[BLOCK];
	int r = 0;
	for (;;) {
		if (off + BLOCK > end) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s is cut short (no end of archive)", path);
			break;
		}
		if (pread(fd, h, BLOCK, off) != BLOCK) {
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", path);
			break;
		}
		struct host_member x;
		r = header_parse(h, off, path, &x, err);
		if (r != 0) {
			r = r > 0 ? 0 : r;
			break;
		}
		if (x.size > (uint64_t)(end - x.data)) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s is cut short (member %s)", path, x.name);
			break;
		}
		if (k == cap) {
			cap = cap ? 2 * cap : 16;
			m = xrealloc(m, cap * sizeof(*m));
		}
		m[k++] = x;
		off = x.data + (off_t)((x.size + BLOCK - 1) / BLOCK * BLOCK);
	}
	if (r < 0) {
		free(m);
		return r;
	}
	*out = m;
	*n = k;
	return 0;
}

/* Exactly n bytes of the stream; CONFLICT "cut short" at its end before them. */
static int read_n(struct host_tarr *rd, void *buf, size_t n, struct clbsd_err *err)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(rd->fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", rd->path);
		if (k == 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EPIPE,
						"%s is cut short at byte %llu (the export "
						"stopped, or the archive is not whole)",
						rd->path, (unsigned long long)(rd->off + got));
		got += (size_t)k;
	}
	rd->off += n;
	return 0;
}

int host_tarr_next(struct host_tarr *rd, struct host_member *m, struct clbsd_err *err)
{
	char h[BLOCK];
	off_t at = (off_t)rd->off;
	if (read_n(rd, h, BLOCK, err) < 0)
		return -err->code;
	int r = header_parse(h, at, rd->path, m, err);
	if (r == 1 && read_n(rd, h, BLOCK, err) < 0) /* the end is two blocks of zeros */
		return -err->code;
	return r;
}

int host_tarr_data(struct host_tarr *rd, const struct host_member *m, int out, char *mem,
		   char hex[33], struct clbsd_err *err)
{
	XXH3_state_t *x = XXH3_createState();
	XXH3_128bits_reset(x);
	size_t cap = 1 << 20;
	autofree char *buf = mem ? NULL : xmalloc(cap);
	uint64_t done = 0, padded = (m->size + BLOCK - 1) / BLOCK * BLOCK;
	int r = 0;
	while (r == 0 && done < m->size) {
		size_t want = m->size - done < cap ? (size_t)(m->size - done) : cap;
		char *p = mem ? mem + done : buf;
		if ((r = read_n(rd, p, want, err)) < 0)
			break;
		XXH3_128bits_update(x, p, want);
		if (out >= 0 && (r = write_all(out, p, want)) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "write member %s", m->name);
		done += want;
	}
	char pad_block[BLOCK];
	if (r == 0 && padded > m->size)
		r = read_n(rd, pad_block, (size_t)(padded - m->size), err);
	digest_hex(x, r == 0 ? hex : NULL);
	return r;
}

int host_member_copy(int fd, const struct host_member *m, const char *dst, char hex[33],
		     struct clbsd_err *err)
{
	int out = -1;
	if (dst) {
		out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", dst);
	}
	XXH3_state_t *x = XXH3_createState();
	XXH3_128bits_reset(x);
	size_t cap = 1 << 20;
	autofree char *buf = xmalloc(cap);
	uint64_t done = 0;
	int r = 0;
	while (r == 0 && done < m->size) {
		size_t want = m->size - done < cap ? (size_t)(m->size - done) : cap;
		ssize_t n = pread(fd, buf, want, m->data + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EIO,
					  "read member %s", m->name);
			break;
		}
		XXH3_128bits_update(x, buf, (size_t)n);
		if (out >= 0 && (r = write_all(out, buf, (size_t)n)) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "write %s", dst);
		done += (uint64_t)n;
	}
	if (out >= 0 && close(out) < 0 && r == 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "write %s", dst);
	digest_hex(x, r == 0 ? hex : NULL);
	if (r < 0 && dst)
		unlink(dst);
	return r;
}
