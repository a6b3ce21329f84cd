/* Burn CPU forever (in two threads' worth of processes). */
#include "hostile.h"
int main(void)
{
	fork();
	volatile unsigned long x = 0;
	for (;;)
		x++;
}
