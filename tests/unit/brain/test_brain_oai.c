/* brain/oai: the chat request validator, the stream-chunk parser, the accumulator for non-streamed answers
 * (tool calls merged by index), upstream error classification and OpenAI-shaped errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/oai.h"

static int parse(const char *s, struct oai_req *q, cg_err *e)
{
	return oai_req_parse(s, strlen(s), q, e);
}

static void t_request_ok(void **st)
{
	struct oai_req q;
	cg_err e;
	const char *b = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_completion_tokens\":7,"
			"\"x_unknown\":{\"kept\":1},\"messages\":[{\"role\":\"system\",\"content\":\"abcd\"},"
			"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"efgh\"}]}]}";
	assert_int_equal(parse(b, &q, &e), 0);
	assert_string_equal(q.model, "m");
	assert_true(q.stream);
	assert_true(q.include_usage);
	assert_int_equal(q.max_tokens, 7);
	assert_int_equal(q.nmessages, 2);
	assert_int_equal(q.prompt_bytes, 8 + 2 * 16);
	assert_non_null(json_object_get(q.root, "x_unknown")); /* passed through untouched */
	oai_req_done(&q);
	/* no model: the gateway default applies */
	assert_int_equal(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &q, &e), 0);
	assert_string_equal(q.model, "");
	assert_false(q.stream);
	oai_req_done(&q);
	/* a tool round trip */
	const char *t = "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{}}}],"
			"\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":null,"
			"\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
			"\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"}]}";
	assert_int_equal(parse(t, &q, &e), 0);
	assert_true(q.has_tools);
	oai_req_done(&q);
}

static void t_request_bad(void **st)
{
	static const struct {
		const char *body, *needle;
	} cases[] = {
		{"", "empty"},
		{"{", "not valid JSON"},
		{"[]", "JSON object"},
		{"{\"messages\":[]}", "messages"},
		{"{\"messages\":[{\"role\":\"x\",\"content\":\"a\"}]}", "messages[0].role"},
		{"{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content"},
		{"{\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}", "tool_call_id"},
		{"{\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"tool_calls\":[]}]}", "tool_calls"},
		{"{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "model"},
		{"{\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "stream"},
		{"{\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "max_tokens"},
		{"{\"temperature\":3,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "temperature"},
		{"{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "n:"},
		{"{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
		 "tools[0].function.name"},
		{"{\"tool_choice\":\"maybe\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "tool_choice"},
		{"{\"stop\":[1],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "stop"},
		{"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"messages\":[]}", "not valid JSON"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct oai_req q;
		cg_err e;
		assert_int_equal(parse(cases[i].body, &q, &e), -CG_E_INVALID_ARGUMENT);
		if (!strstr(e.msg, cases[i].needle))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, cases[i].needle);
		assert_null(q.root);
	}
	struct oai_req q;
	cg_err e;
	assert_int_equal(oai_req_parse("{}", OAI_BODY_MAX + 1, &q, &e), -CG_E_QUOTA_EXCEEDED);
	assert_int_equal(e.http_status, 413);
}

static void t_chunks(void **st)
{
	struct oai_chunk c;
	assert_int_equal(oai_chunk_parse(" [DONE]\n", 8, &c), 0);
	assert_int_equal(c.kind, OAI_CHUNK_DONE);
	const char *role = "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}";
	assert_int_equal(oai_chunk_parse(role, strlen(role), &c), 0);
	assert_int_equal(c.kind, OAI_CHUNK_DATA);
	assert_false(c.content); /* a role chunk is not a token: failover stays possible */
	oai_chunk_done(&c);
	const char *tok = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}";
	assert_int_equal(oai_chunk_parse(tok, strlen(tok), &c), 0);
	assert_true(c.content);
	assert_false(c.usage);
	oai_chunk_done(&c);
	const char *tc = "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\"}}]}}]}";
	assert_int_equal(oai_chunk_parse(tc, strlen(tc), &c), 0);
	assert_true(c.content);
	oai_chunk_done(&c);
	const char *u = "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
	assert_int_equal(oai_chunk_parse(u, strlen(u), &c), 0);
	assert_true(c.usage && c.usage_only);
	assert_int_equal(c.prompt_tokens, 3);
	assert_int_equal(c.completion_tokens, 5);
	oai_chunk_done(&c);
	const char *err = "{\"error\":{\"message\":\"boom\"}}";
	assert_int_equal(oai_chunk_parse(err, strlen(err), &c), 0);
	assert_int_equal(c.kind, OAI_CHUNK_ERROR);
	assert_string_equal(c.error, "boom");
	oai_chunk_done(&c);
	static const char *const bad[] = {"{\"choices\": [ nope", "42", "{\"choices\":\"x\"}", "{\"id\":1}",
					  "{\"choices\":[1]}", "{\"choices\":[{\"delta\":5}]}", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(oai_chunk_parse(bad[i], strlen(bad[i]), &c), -1);
		assert_int_equal(c.kind, OAI_CHUNK_BAD);
		assert_null(c.json);
		assert_true(c.error[0] != 0);
	}
}

static void add(struct oai_acc *a, const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	assert_int_equal(oai_acc_add(a, j), 0);
	json_decref(j);
}

static void t_accumulate(void **st)
{
	struct oai_acc a;
	oai_acc_init(&a);
	add(&a, "{\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}");
	add(&a, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}");
	add(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
		"\"function\":{\"name\":\"get_\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}");
	add(&a, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"weather\",\"arguments\":\":1}\"}},"
		"{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}");
	json_t *r = oai_acc_result(&a, 4, 6);
	assert_string_equal(json_string_value(json_object_get(r, "object")), "chat.completion");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "c1");
	json_t *c0 = json_array_get(json_object_get(r, "choices"), 0);
	assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "tool_calls");
	json_t *msg = json_object_get(c0, "message");
	assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello");
	json_t *calls = json_object_get(msg, "tool_calls");
	assert_int_equal(json_array_size(calls), 2);
	json_t *f0 = json_object_get(json_array_get(calls, 0), "function");
	assert_string_equal(json_string_value(json_object_get(f0, "name")), "get_weather");
	assert_string_equal(json_string_value(json_object_get(f0, "arguments")), "{\"a\":1}");
	assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 1), "id")), "call_2");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "usage"), "total_tokens")), 10);
	json_decref(r);
	/* a tool-call index that skips ahead is malformed */
	json_t *j = json_loads("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":9}]}}]}", 0, NULL);
	assert_int_equal(oai_acc_add(&a, j), -1);
	json_decref(j);
	oai_acc_done(&a);
}

static void t_classify_and_errors(void **st)
{
	char msg[200];
	const char *ctx = "{\"error\":{\"message\":\"too long\",\"code\":\"context_length_exceeded\"}}";
	assert_int_equal(oai_classify(400, ctx, strlen(ctx), msg, sizeof msg), OAI_FAIL_CONTEXT);
	assert_string_equal(msg, "too long");
	const char *ctx2 = "{\"error\":{\"message\":\"This model's maximum context length is 4096 tokens\"}}";
	assert_int_equal(oai_classify(400, ctx2, strlen(ctx2), msg, sizeof msg), OAI_FAIL_CONTEXT);
	const char *bad = "{\"error\":{\"message\":\"messages: bad\"}}";
	assert_int_equal(oai_classify(400, bad, strlen(bad), msg, sizeof msg), OAI_FAIL_CLIENT);
	assert_int_equal(oai_classify(429, NULL, 0, msg, sizeof msg), OAI_FAIL_RETRY);
	assert_int_equal(oai_classify(503, "<html>", 6, msg, sizeof msg), OAI_FAIL_RETRY);
	assert_int_equal(oai_classify(401, NULL, 0, msg, sizeof msg), OAI_FAIL_RETRY);
	cg_err e;
	const char *type, *code;
	cg_fail(&e, CG_E_QUOTA_EXCEEDED, "budget exhausted");
	oai_error_kind(&e, &type, &code);
	assert_string_equal(type, "insufficient_quota");
	cg_fail(&e, CG_E_RATE_LIMITED, "slow down");
	oai_error_kind(&e, &type, &code);
	assert_string_equal(code, "rate_limit_exceeded");
	json_t *j = oai_error_json("m", "t", NULL);
	assert_true(json_is_null(json_object_get(json_object_get(j, "error"), "code")));
	assert_true(json_is_null(json_object_get(json_object_get(j, "error"), "param")));
	json_decref(j);
}

static void t_fast_path_checks(void **st)
{
	static const char *const good[] = {"{}", " {\"a\":1} ", "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\\u00e9\\n\"},"
					   "\"finish_reason\":null}],\"x\":[true,false,null,-1.5e3,0,[],{}]}"};
	static const char *const bad[] = {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":\"x}",
					  "{\"a\":tru}", "{} {}", "{\"a\":[1,]}", "{\"a\":\"\\q\"}", "{\"choices\": [ nope",
					  "{\"a\":1]", "{\"a\":-}", "{\"a\":1.}", "{\"a\":\"\\u12\"}"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		if (!oai_json_object_valid(good[i], strlen(good[i])))
			fail_msg("valid JSON refused: %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (oai_json_object_valid(bad[i], strlen(bad[i])))
			fail_msg("invalid JSON accepted: %s", bad[i]);
	char deep[200] = "{\"a\":";
	for (int i = 0; i < 70; i++)
		strcat(deep, "[");
	assert_false(oai_json_object_valid(deep, strlen(deep)));
	const char *plain = "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}";
	assert_false(oai_chunk_needs_parse(plain, strlen(plain)));
	const char *u = "{\"choices\":[],\"usage\" : {\"prompt_tokens\":1}}";
	assert_true(oai_chunk_needs_parse(u, strlen(u)));
	const char *e = "{\"error\":{\"message\":\"x\"}}";
	assert_true(oai_chunk_needs_parse(e, strlen(e)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_request_ok),   cmocka_unit_test(t_request_bad),         cmocka_unit_test(t_chunks),
		cmocka_unit_test(t_accumulate),   cmocka_unit_test(t_classify_and_errors),
		cmocka_unit_test(t_fast_path_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
