/* A small closed-loop HTTP/1.1 load generator for bench_node.sh: C keep-alive connections, one thread each,
 * each sending the same request back to back for D seconds and timing every response. Prints one JSON line:
 * {"requests","errors","seconds","rps","p50_ms","p99_ms","max_ms"}.
 *
 * Usage: loadgen HOST:PORT CONNECTIONS SECONDS METHOD PATH [BODY [HEADER...]]
 * Responses must carry Content-Length (both servers under test do). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1u << 22)

static struct sockaddr_in addr;
static char request[16384];
static size_t request_len;
static int64_t deadline_us;

struct worker {
	pthread_t t;
	uint32_t *lat_us;
	size_t n, cap;
	long errors;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends the request and reads one whole response; 0 on a 2xx answer. */
static int one_request(int fd, char *buf, size_t cap)
{
	size_t off = 0;
	while (off < request_len) {
		ssize_t w = send(fd, request + off, request_len - off, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	size_t n = 0;
	char *end = NULL;
	while (!end) {
		if (n + 1 >= cap)
			return -1;
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = 0;
		end = strstr(buf, "\r\n\r\n");
	}
	size_t hlen = (size_t)(end - buf) + 4;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (!cl || cl > end)
		return -1;
	size_t blen = strtoul(cl + 17, NULL, 10);
	while (n < hlen + blen) {
		if (n + 1 >= cap)
			return -1;
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	return (strncmp(buf, "HTTP/1.1 2", 10) == 0 && n == hlen + blen) ? 0 : -1;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char *buf = malloc(1 << 16);
	int fd = dial();
	while (buf && now_us() < deadline_us) {
		if (fd < 0 && (fd = dial()) < 0) {
			w->errors++;
			continue;
		}
		int64_t t0 = now_us();
		if (one_request(fd, buf, 1 << 16) < 0) {
			w->errors++;
			close(fd);
			fd = -1;
			continue;
		}
		int64_t dt = now_us() - t0;
		if (w->n < w->cap)
			w->lat_us[w->n++] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: loadgen HOST:PORT CONNECTIONS SECONDS METHOD PATH [BODY [HEADER...]]\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof host)
		return 2;
	snprintf(host, sizeof host, "%.*s", (int)(colon - argv[1]), argv[1]);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return 2;
	int conns = (int)strtoul(argv[2], NULL, 10);
	double secs = strtod(argv[3], NULL);
	const char *body = argc > 6 ? argv[6] : "";
	int k = snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: %s\r\n", argv[4], argv[5], argv[1]);
	for (int i = 7; i < argc; i++)
		k += snprintf(request + k, sizeof request - (size_t)k, "%s\r\n", argv[i]);
	k += snprintf(request + k, sizeof request - (size_t)k, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	if (conns < 1 || conns > 1024 || secs <= 0 || (size_t)k >= sizeof request)
		return 2;
	request_len = (size_t)k;
	struct worker *w = calloc((size_t)conns, sizeof *w);
	int64_t start = now_us();
	deadline_us = start + (int64_t)(secs * 1e6);
	for (int i = 0; i < conns; i++) {
		w[i].cap = MAX_SAMPLES / (size_t)conns;
		w[i].lat_us = malloc(w[i].cap * sizeof(uint32_t));
		pthread_create(&w[i].t, NULL, run, &w[i]);
	}
	size_t total = 0;
	long errors = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(w[i].t, NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	double elapsed = (double)(now_us() - start) / 1e6;
	uint32_t *all = malloc((total ? total : 1) * sizeof(uint32_t));
	size_t m = 0;
	for (int i = 0; i < conns; i++) {
		memcpy(all + m, w[i].lat_us, w[i].n * sizeof(uint32_t));
		m += w[i].n;
		free(w[i].lat_us);
	}
	qsort(all, total, sizeof(uint32_t), cmp_u32);
	double p50 = total ? all[total / 2] / 1000.0 : 0;
	double p99 = total ? all[(size_t)((double)(total - 1) * 0.99)] / 1000.0 : 0;
	double mx = total ? all[total - 1] / 1000.0 : 0;
	printf("{\"requests\":%zu,\"errors\":%ld,\"seconds\":%.2f,\"rps\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"max_ms\":%.3f}\n",
	       total, errors, elapsed, (double)total / elapsed, p50, p99, mx);
	free(all);
	free(w);
	return total ? 0 : 1;
}
