/* Reach an address beyond the host (a public resolver and the usual gateway). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include "hostile.h"
int main(void)
{
	const char *addrs[] = {"1.1.1.1", "10.0.2.2"};
	int last = 0;
	for (int i = 0; i < 2; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (s < 0)
			blocked(errno);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
		inet_pton(AF_INET, addrs[i], &a.sin_addr);
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
			escaped(addrs[i]);
		last = errno;
		if (errno == EINPROGRESS) {
			struct pollfd p = {s, POLLOUT, 0};
			if (poll(&p, 1, 2000) == 1) {
				int err = 0;
				socklen_t l = sizeof err;
				getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err == 0)
					escaped(addrs[i]);
				last = err;
			} else {
				last = ETIMEDOUT;
			}
		}
		close(s);
	}
	blocked(last);
}
