/* Enter the kernel through the 32-bit ABI (int 0x80), where syscall numbers differ: a filter written for
 * x86-64 numbers must not let it through. getuid32 is harmless; if it returns, the ABI is open. */
#include "hostile.h"
int main(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(199L) : "memory"); /* getuid32 on i386 */
	if (ret >= 0)
		escaped("i386 syscall answered");
	blocked((int)-ret);
}
