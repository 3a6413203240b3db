/*
 * clbsd public API: include this to use the client library.
 *
 *   <clbsd/error.h>   the error contract (struct clbsd_err)
 *   <clbsd/client.h>  talking to clbsdd over its Unix socket
 *
 * The HTTP/JSON protocol itself is documented in docs/api.md; any HTTP
 * client that can use a Unix socket speaks it too.
 */
#ifndef CLBSD_CLBSD_H
#define CLBSD_CLBSD_H

/* The release, shared by clbsd, clbsdd and clbsd-shim. */
#define CLBSD_VERSION	  "0.1.0"
#define CLBSD_API_VERSION "v1"

#include <clbsd/client.h>
#include <clbsd/error.h>

#endif
