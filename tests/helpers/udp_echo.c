/*
 * A UDP echo server for the networking tests, linked statically so it runs
 * inside a busybox container (whose nc has no UDP): `udp-echo PORT` answers
 * every datagram with "echo:" and the datagram, until killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: udp-echo PORT\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("udp-echo");
		return 1;
	}
	for (;;) {
		char in[1024], out[1100];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			continue;
		int m = snprintf(out, sizeof(out), "echo:%.*s", (int)n, in);
		sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&from, fl);
	}
}
