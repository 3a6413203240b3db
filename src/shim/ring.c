/*
 * The scrollback ring: the last N bytes of a container's output, replayed to
 * a console client that attaches with "replay". Bytes carry their stream in a
 * side table of segments so that a non-TTY replay keeps stdout and stderr
 * apart without storing a tag per byte.
 */
#include "shim/shim.h"

#include <stdlib.h>
#include <string.h>

/* Enough for interleaved output; a table entry costs 8 bytes. */
#define SEG_MAX 1024

void shim_ring_init(struct shim_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->seg_max = SEG_MAX;
}

void shim_ring_release(struct shim_ring *r)
{
	free(r->data);
	free(r->segs);
	size_t cap = r->cap;
	shim_ring_init(r, cap);
}

static struct shim_ring_seg *seg_at(const struct shim_ring *r, size_t i)
{
	return &r->segs[(r->seg_head + i) % r->seg_cap];
}

/* Forget the oldest n bytes (n <= r->len). */
static void drop(struct shim_ring *r, size_t n)
{
	while (n > 0) {
		struct shim_ring_seg *s = seg_at(r, 0);
		size_t take = s->len < n ? s->len : n;
		s->len -= (uint32_t)take;
		r->head = (r->head + take) % r->cap;
		r->len -= take;
		n -= take;
		if (s->len == 0) {
			r->seg_head = (r->seg_head + 1) % r->seg_cap;
			r->seg_n--;
		}
	}
	if (r->len == 0)
		r->head = 0;
}

static void seg_grow(struct shim_ring *r)
{
	size_t ncap = r->seg_cap ? r->seg_cap * 2 : 16;
	if (ncap > r->seg_max)
		ncap = r->seg_max;
	struct shim_ring_seg *n = xcalloc(ncap, sizeof(*n));
	for (size_t i = 0; i < r->seg_n; i++)
		n[i] = *seg_at(r, i);
	free(r->segs);
	r->segs = n;
	r->seg_cap = ncap;
	r->seg_head = 0;
}

static void seg_push(struct shim_ring *r, int stream, size_t len)
{
	if (r->seg_n > 0) {
		struct shim_ring_seg *last = seg_at(r, r->seg_n - 1);
		if (last->stream == stream) {
			last->len += (uint32_t)len;
			return;
		}
	}
	if (r->seg_n == r->seg_cap && r->seg_cap < r->seg_max)
		seg_grow(r);
	if (r->seg_n == r->seg_cap)
		drop(r, seg_at(r, 0)->len); /* table full: the oldest run goes */
	struct shim_ring_seg *s = &r->segs[(r->seg_head + r->seg_n) % r->seg_cap];
	s->stream = (uint8_t)stream;
	s->len = (uint32_t)len;
	r->seg_n++;
}

void shim_ring_write(struct shim_ring *r, int stream, const void *data, size_t len)
{
	if (r->cap == 0 || len == 0)
		return;
	const char *p = data;
	if (len >= r->cap) {
		/* Only the tail survives: start over with it. */
		p += len - r->cap;
		len = r->cap;
		if (r->len)
			drop(r, r->len);
	}
	if (!r->data)
		r->data = xmalloc(r->cap);
	if (r->len + len > r->cap)
		drop(r, r->len + len - r->cap);
	/* Account the segment first: dropping a whole old segment moves head. */
	seg_push(r, stream, len);
	size_t tail = (r->head + r->len) % r->cap;
	size_t first = r->cap - tail < len ? r->cap - tail : len;
	memcpy(r->data + tail, p, first);
	memcpy(r->data, p + first, len - first);
	r->len += len;
}

void shim_ring_visit(const struct shim_ring *r, shim_ring_fn fn, void *ctx)
{
	size_t pos = r->head;
	for (size_t i = 0; i < r->seg_n; i++) {
		const struct shim_ring_seg *s = seg_at(r, i);
		size_t left = s->len;
		while (left > 0) {
			size_t run = r->cap - pos < left ? r->cap - pos : left;
			fn(s->stream, r->data + pos, run, ctx);
			pos = (pos + run) % r->cap;
			left -= run;
		}
	}
}
