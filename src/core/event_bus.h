/*
 * The event bus: every state change is a typed event with a sequence number
 * and a time stamp, kept in a bounded ring (for `GET /v1/events?since=`) and
 * appended to a journal file (<root>/events.jsonl, rotated by size).
 * Subscribers are callbacks run on the loop thread, in publish order.
 *
 * Invariant: sequence numbers increase by one per event and continue from the
 * journal across daemon restarts.
 */
#ifndef CLBSD_EVENTS_H
#define CLBSD_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#define EVENTS_RING 1024

struct event_rec {
	uint64_t seq;
	int64_t time_ns;
	char *type;	 /* "container.started" */
	char *container; /* NULL when not about a container */
	json_t *attrs;	 /* object, owned */
};

typedef void (*events_sub_fn)(const struct event_rec *ev, void *ctx);

struct events_sub {
	events_sub_fn fn;
	void *ctx;
	struct events_sub *next;
};

struct events {
	struct event_rec ring[EVENTS_RING];
	uint64_t next_seq;
	uint64_t ring_first; /* first sequence number published by this run */
	char *journal;	     /* path, NULL for none */
	int64_t journal_max; /* rotate above this size */
	int journal_fd;	     /* kept open between events; -1 until the first */
	int64_t journal_size;
	struct events_sub *subs;
};

/* Open the journal (continuing its sequence numbers). */
void events_init(struct events *ev, const char *journal_path);
void events_release(struct events *ev);
/* Publish; takes ownership of attrs (may be NULL). */
void events_publish(struct events *ev, const char *type, const char *container, json_t *attrs);
struct events_sub *events_subscribe(struct events *ev, events_sub_fn fn, void *ctx);
void events_unsubscribe(struct events *ev, struct events_sub *sub);
/*
 * Call fn for events with seq > since, oldest first: from the ring, and from
 * the journal (and its rotated predecessor) for those the ring has dropped,
 * including those of earlier daemon runs. e->attrs may be NULL for an event
 * read back from the journal without attributes.
 */
void events_replay(struct events *ev, uint64_t since, events_sub_fn fn, void *ctx);
/* The event as a JSON object (new reference). */
json_t *event_to_json(const struct event_rec *e);

#endif
