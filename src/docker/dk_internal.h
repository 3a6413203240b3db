/*
 * Private to src/docker/: a libcurl handle set up for an endpoint, shared by
 * the requests (client.c) and the event follower (follow.c).
 */
#ifndef CLBSD_DOCKER_INTERNAL_H
#define CLBSD_DOCKER_INTERNAL_H

#include "docker/docker.h"

#include "util/curl_lib.h"
#include <sys/types.h>

/*
 * The ssh process of an ssh:// connection (pid 0: none), and until it runs
 * the listening socket libcurl's connection was queued on (-1: none).
 */
struct dk_conn {
	const struct dk_endpoint *ep;
	pid_t pid;
	int fd;
	int listener;
};

/*
 * A new easy handle speaking to c's endpoint; conn lives as long as the
 * handle. NULL (err set) when libcurl cannot be loaded.
 */
CURL *dk_handle(const struct dk_client *c, struct dk_conn *conn, struct clbsd_err *err);
/*
 * An ssh:// connection libcurl made without sending a request through it
 * (CURLOPT_CONNECT_ONLY): start its ssh now. 0 for other schemes.
 */
int dk_conn_spawn(struct dk_conn *conn);
/* "http://localhost/v1.41" and the like. */
const char *dk_client_base(const struct dk_client *c);

#endif
