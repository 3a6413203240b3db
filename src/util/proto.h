/*
 * The shim protocol: what the daemon and the CLI say to a clbsd-shim over its
 * Unix socket (<run>/shims/<name>.sock).
 *
 * Every connection starts with one request line: a JSON object terminated by
 * '\n' (at most PROTO_LINE_MAX bytes). The shim answers with one JSON line.
 * Requests:
 *
 *   {"op":"state"}
 *       -> {"ok":true,"status":"created|running|exited","pid":N,
 *           "shim_pid":N,"started_at":"RFC3339","tty":bool,
 *           "exit_code":N,"oom_killed":bool,"finished_at":"RFC3339"}, close.
 *   {"op":"wait"}
 *       -> {"ok":true}, then zero or more event lines while the container runs:
 *          {"event":"oom","oom_kills":N}
 *          and finally
 *          {"event":"exit","exit_code":N,"signal":S,"oom_killed":bool,
 *           "finished_at":"RFC3339"}, close.
 *   {"op":"release"}
 *       Let a container started with --hold exec its command. -> {"ok":true}
 *   {"op":"kill","signal":N,"all":bool}
 *       Signal the init (all: every process of the container). -> {"ok":true}
 *   {"op":"attach","stdin":bool,"replay":bool,"rows":R,"cols":C,"release":bool}
 *       -> {"ok":true,"tty":bool}, then binary frames both ways (below).
 *       replay sends the scrollback ring first. release also releases a held
 *       container once this client is registered, so no output is missed.
 *       The shim ends the stream with an 'X' frame when the container exits.
 *   {"op":"exec","argv":[..],"env":["K=V",..],"cwd":"/","uid":N,"gid":N,
 *    "tty":bool,"stdin":bool,"rows":R,"cols":C}
 *       -> {"ok":true,"pid":N} (or {"ok":false,"error":"..."}), then frames;
 *       the stream ends with an 'X' frame carrying the process's exit code.
 *
 * Any failure: {"ok":false,"error":"message"} and close.
 *
 * Frames: 1 byte type, 4 byte big-endian payload length, payload
 * (at most PROTO_FRAME_MAX bytes).
 *   client -> shim: 'I' stdin bytes, 'C' close stdin, 'R' resize (rows, cols
 *                   as two big-endian uint16).
 *   shim -> client: 'O' stdout bytes, 'E' stderr bytes, 'X' exit (JSON object
 *                   {"exit_code":N,"signal":S,"oom_killed":bool}).
 * A client detaches by closing its end; the process is not touched.
 *
 * Exit codes follow the shell convention: the status for a normal exit,
 * 128 + signal number for a death by signal.
 */
#ifndef CLBSD_PROTO_H
#define CLBSD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_LINE_MAX	65536
#define PROTO_FRAME_MAX (1u << 20)
#define PROTO_HDR_LEN	5

enum proto_frame {
	PROTO_STDIN = 'I',
	PROTO_STDIN_CLOSE = 'C',
	PROTO_RESIZE = 'R',
	PROTO_STDOUT = 'O',
	PROTO_STDERR = 'E',
	PROTO_EXIT = 'X',
};

/* Encode a frame header into hdr[PROTO_HDR_LEN]. */
static inline void proto_hdr(unsigned char *hdr, char type, uint32_t len)
{
	hdr[0] = (unsigned char)type;
	hdr[1] = (unsigned char)(len >> 24);
	hdr[2] = (unsigned char)(len >> 16);
	hdr[3] = (unsigned char)(len >> 8);
	hdr[4] = (unsigned char)len;
}

static inline uint32_t proto_hdr_len(const unsigned char *hdr)
{
	return ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 8) |
	       hdr[4];
}

/* Write one whole frame to a blocking fd. Returns 0 or -errno. */
int proto_write_frame(int fd, char type, const void *data, size_t len);

/*
 * Connect to a shim socket, send the request line, read the reply line.
 * On success *fd is the connected socket (positioned after the reply, ready
 * for frames) and *reply the reply line without its newline (caller frees).
 */
struct clbsd_err;
int proto_request(const char *sock_path, const char *request_json, int *fd, char **reply,
		  struct clbsd_err *err);

/* Read one '\n'-terminated line from a blocking fd, byte by byte (small). */
int proto_read_line(int fd, char **line, struct clbsd_err *err);

#endif
