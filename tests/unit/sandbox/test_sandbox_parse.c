/* The limit parsers: sizes, durations, CPU counts — what people type on the command line and in config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sandbox/sandbox.h"

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	cg_err e;
	assert_int_equal(sandbox_parse_size("4096", &v, &e), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(sandbox_parse_size("512M", &v, &e), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(sandbox_parse_size("1g", &v, &e), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(sandbox_parse_size("2KiB", &v, &e), 0);
	assert_int_equal(v, 2048);
	assert_int_equal(sandbox_parse_size("1.5K", &v, &e), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(sandbox_parse_size("0.5G", &v, &e), 0);
	assert_int_equal(v, 512ull << 20);
	const char *bad[] = {"", "M", "-1", "1X", "1.M", "1..2K", "99999999999999999999", "16777216T", " 1M", "1M "};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(sandbox_parse_size(bad[i], &v, &e), -CG_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "size"));
	}
}

static void test_durations(void **state)
{
	(void)state;
	uint64_t ms;
	cg_err e;
	assert_int_equal(sandbox_parse_duration("10s", &ms, &e), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(sandbox_parse_duration("3", &ms, &e), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(sandbox_parse_duration("500ms", &ms, &e), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(sandbox_parse_duration("1.5m", &ms, &e), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(sandbox_parse_duration("2h", &ms, &e), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(sandbox_parse_duration("0.25s", &ms, &e), 0);
	assert_int_equal(ms, 250);
	const char *bad[] = {"", "s", "10d", "1e3", "-5s", "100000h", "1.2.3s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sandbox_parse_duration(bad[i], &ms, &e), -CG_E_INVALID_ARGUMENT);
}

static void test_cpus(void **state)
{
	(void)state;
	uint32_t m;
	cg_err e;
	assert_int_equal(sandbox_parse_cpus("1", &m, &e), 0);
	assert_int_equal(m, 1000);
	assert_int_equal(sandbox_parse_cpus("1.5", &m, &e), 0);
	assert_int_equal(m, 1500);
	assert_int_equal(sandbox_parse_cpus("0.25", &m, &e), 0);
	assert_int_equal(m, 250);
	const char *bad[] = {"0", "0.001", "1025", "abc", "1c", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sandbox_parse_cpus(bad[i], &m, &e), -CG_E_INVALID_ARGUMENT);
}

static void test_config(void **state)
{
	(void)state;
	struct sandbox_defaults d;
	cg_err e;
	sandbox_defaults_init(&d);
	json_t *ok = json_loads("{\"backend\":\"bwrap\",\"memory\":\"256M\",\"cpus\":\"0.5\",\"pids\":64,"
				"\"timeout\":\"5s\",\"disk\":\"16M\",\"output_cap\":\"64K\",\"nofile\":128}",
				0, NULL);
	assert_int_equal(sandbox_config_parse(ok, &d, &e), 0);
	assert_int_equal(d.backend, SANDBOX_BWRAP);
	assert_int_equal(d.mem_bytes, 256u << 20);
	assert_int_equal(d.cpu_millis, 500);
	assert_int_equal(d.pids, 64);
	assert_int_equal(d.timeout_ms, 5000);
	assert_int_equal(d.disk_bytes, 16u << 20);
	assert_int_equal(d.out_cap, 64u << 10);
	assert_int_equal(d.nofile, 128);
	json_decref(ok);

	struct {
		const char *json, *field;
	} bad[] = {
		{"{\"backend\":\"docker\"}", "sandbox.backend"}, {"{\"memory\":\"lots\"}", "sandbox.memory"},
		{"{\"memory\":\"1K\"}", "sandbox.memory"},       {"{\"pids\":0}", "sandbox.pids"},
		{"{\"timeout\":5}", "sandbox.timeout"},          {"{\"colour\":\"red\"}", "colour"},
		{"{\"cpus\":\"many\"}", "sandbox.cpus"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i].json, 0, NULL);
		assert_non_null(j);
		assert_int_equal(sandbox_config_parse(j, &d, &e), -CG_E_INVALID_ARGUMENT);
		if (!strstr(e.msg, bad[i].field))
			fail_msg("%s: message '%s' does not name %s", bad[i].json, e.msg, bad[i].field);
		json_decref(j);
	}

	struct sandbox_spec s;
	sandbox_spec_init(&s);
	s.mem_bytes = 8u << 20;
	sandbox_defaults_init(&d);
	sandbox_defaults_apply(&d, &s, true);
	assert_int_equal(s.mem_bytes, 8u << 20); /* explicit values win */
	assert_int_equal(s.pids, 256);
	assert_int_equal(s.timeout_ms, 60000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
