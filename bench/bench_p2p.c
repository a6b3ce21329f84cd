/* bench_p2p — the raw-TCP anchor for bench_p2p.sh: the same echo workload as /clawgrid/echo/1.0.0 (send N
 * bytes, read them back concurrently, half-close) over a plain loopback TCP socket, plus the TCP connect
 * time. Prints one JSON line: {"bytes":N,"ms":…,"mbps":…,"connect_ms":…}.
 *   bench_p2p BYTES */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void echo_server(int lfd)
{
	for (int k = 0; k < 6; k++) { /* 5 connect probes, then the echo connection */
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			_exit(1);
		static char b[1 << 16];
		ssize_t n;
		while ((n = read(fd, b, sizeof b)) > 0)
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fd, b + off, (size_t)(n - off));
				if (w <= 0)
					_exit(1);
				off += w;
			}
		close(fd);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	size_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : (64u << 20);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	socklen_t len = sizeof a;
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0)
		echo_server(lfd);
	close(lfd);
	double conn[5];
	for (int i = 0; i < 5; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		double t = now_ms();
		if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
			return 1;
		conn[i] = now_ms() - t;
		close(fd);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		return 1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	static char out[1 << 16], in[1 << 16];
	memset(out, 0x5a, sizeof out);
	size_t sent = 0, got = 0;
	double t0 = now_ms();
	while (got < total) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
		if (poll(&p, 1, 10000) <= 0)
			return 1;
		if ((p.revents & POLLOUT) && sent < total) {
			size_t n = total - sent < sizeof out ? total - sent : sizeof out;
			ssize_t w = send(fd, out, n, MSG_DONTWAIT);
			if (w > 0)
				sent += (size_t)w;
			if (sent == total)
				shutdown(fd, SHUT_WR);
		}
		if (p.revents & POLLIN) {
			ssize_t r = recv(fd, in, sizeof in, MSG_DONTWAIT);
			if (r == 0)
				break;
			if (r > 0)
				got += (size_t)r;
		}
	}
	double ms = now_ms() - t0;
	close(fd);
	waitpid(pid, NULL, 0);
	/* median of the connect probes */
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (conn[j] < conn[i]) {
				double x = conn[i];
				conn[i] = conn[j];
				conn[j] = x;
			}
	printf("{\"bytes\":%zu,\"ms\":%.3f,\"mbps\":%.1f,\"connect_ms\":%.3f}\n", got, ms,
	       (double)got / 1048576.0 / (ms / 1000.0), conn[2]);
	return got == total ? 0 : 1;
}
