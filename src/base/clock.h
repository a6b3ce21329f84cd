/* clock — wall and monotonic time in milliseconds, overridable for tests. */
#ifndef CG_BASE_CLOCK_H
#define CG_BASE_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);  /* Unix epoch ms (plus the test offset) */
int64_t clock_mono_ms(void); /* monotonic ms */
int64_t clock_mono_us(void);
/* Tests: shift clock_now_ms() by delta ms (cumulative). Also settable via env CLAWGRID_CLOCK_OFFSET_MS. */
void clock_shift_ms(int64_t delta);
/* ISO-8601 UTC with milliseconds ("2026-11-25T21:30:00.123Z") into buf (>= 25 bytes). */
const char *clock_iso(char *buf, int64_t ms);

#endif
