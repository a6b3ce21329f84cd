/* Raw and packet sockets (spoofing, sniffing). */
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include "hostile.h"
int main(void)
{
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (s >= 0)
		escaped("raw socket");
	int e = errno;
	s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s >= 0)
		escaped("packet socket");
	blocked(e);
}
