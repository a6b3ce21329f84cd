/* Connect to a TCP port the host listens on at 127.0.0.1 (port given by the test). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		blocked(errno);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argc > 1 ? argv[1] : "22"))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
		escaped("connected to the host's loopback");
	blocked(errno);
}
