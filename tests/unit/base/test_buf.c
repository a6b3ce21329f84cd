/* buf: the hard cap holds for every append, failed appends change nothing, text stays NUL-terminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"

static void t_cap(void **st)
{
	(void)st;
	buf b;
	buf_init(&b, 10);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_printf(&b, "%s", "world"), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "helloworld");
	assert_int_equal(buf_putc(&b, '!'), -1);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "helloworld");
	buf_consume(&b, 5);
	assert_string_equal(buf_cstr(&b), "world");
	assert_int_equal(buf_printf(&b, "%05d", 42), 0);
	assert_string_equal(buf_cstr(&b), "world00042");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_done(&b);
	assert_int_equal(b.cap, 10); /* reusable */
	assert_null(b.data);
	/* huge single appends are refused without allocating */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	buf_done(&b);
}

static void t_grow_steal_wipe(void **st)
{
	(void)st;
	buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_putc(&b, (uint8_t)('a' + i % 26)), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(b.data[b.len], 0);
	assert_int_equal(b.data[9999], 'a' + 9999 % 26);
	size_t n;
	uint8_t *p = buf_steal(&b, &n);
	assert_int_equal(n, 10000);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
	assert_int_equal(buf_append(&b, "secret", 6), 0);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_wipe(&b);
	assert_null(b.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_cap), cmocka_unit_test(t_grow_steal_wipe)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
