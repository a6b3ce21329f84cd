/* libFuzzer target: the chat request body a provider receives, checked against a policy
 * (provider_chat_prepare). An accepted request never exceeds the policy's maxTokens and never carries tools. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *pol = json_pack("{s:i,s:b}", "maxTokens", 64, "allowTools", 0), *req = NULL;
	bool stream, usage;
	cg_err e;
	if (provider_chat_prepare((const char *)data, size, pol, &req, &stream, &usage, &e) == 0) {
		json_t *mt = json_object_get(req, "max_tokens");
		if (mt && (!json_is_integer(mt) || json_integer_value(mt) > 64 || json_integer_value(mt) < 1))
			abort();
		json_t *tools = json_object_get(req, "tools");
		if (json_is_array(tools) && json_array_size(tools) > 0)
			abort();
		json_decref(req);
	}
	json_decref(pol);
	return 0;
}
