/* `clawgrid model add|ls|rm|load|unload|info|status|chat`: local models. add/ls/rm/info work offline on the
 * models folder of the data directory when no node is running; load/unload/status/chat need the node. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/model.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: clawgrid model COMMAND\n"
		   "  add FILE [--name NAME]   copy a GGUF model into the models folder\n"
		   "  ls                       list models (state, size, quantization)\n"
		   "  rm NAME                  delete a model file\n"
		   "  info NAME                GGUF metadata, content hash, state\n"
		   "  load NAME | unload NAME  load into / drop from memory (running node)\n"
		   "  status                   llama backend, GPUs, memory budget, engines (running node)\n"
		   "  chat NAME TEXT [--max-tokens N] [--temperature T] [--seed S]\n"
		   "                           one chat completion through the running node\n");
}

static void folder_of(struct cli *c, char *out, size_t cap)
{
	char *cfg = cli_read_file(c, "config.json", 1 << 20);
	json_t *root = cfg ? json_loads(cfg, 0, NULL) : NULL;
	model_folder_path(json_object_get(root, "models"), c->data_dir, out, cap);
	json_decref(root);
	free(cfg);
}

static void print_list(struct cli *c, json_t *models)
{
	if (c->json) {
		cli_print(c, models);
		return;
	}
	printf("%-24s %-8s %-10s %-8s %10s %8s  %s\n", "NAME", "BACKEND", "STATE", "QUANT", "SIZE_MIB", "CTX",
	       "ARCH");
	size_t i;
	json_t *m;
	json_array_foreach(models, i, m) {
		const char *err = json_string_value(json_object_get(m, "error"));
		printf("%-24s %-8s %-10s %-8s %10lld %8lld  %s\n", json_string_value(json_object_get(m, "name")),
		       json_string_value(json_object_get(m, "backend")) ?: "llama",
		       err ? "invalid" : json_string_value(json_object_get(m, "state")) ?: "-",
		       json_string_value(json_object_get(m, "quantization")) ?: "-",
		       (long long)(json_integer_value(json_object_get(m, "size")) >> 20),
		       (long long)json_integer_value(json_object_get(m, "context_length")),
		       err ? err : json_string_value(json_object_get(m, "architecture")) ?: "-");
	}
}

/* Calls the node; on "no node" runs nothing and returns EXIT_NONODE quietly so the caller can go offline. */
static int try_node(struct cli *c, const char *method, json_t *params, json_t **res, bool *offline)
{
	cg_err e;
	int rc = cli_rpc_quiet(c, method, params, res, &e);
	*offline = rc == EXIT_NONODE;
	if (rc != EXIT_OK && rc != EXIT_NONODE) {
		if (c->json)
			printf("{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", cg_code_name(e.code), e.msg);
		else
			fprintf(stderr, "clawgrid: %s: %s\n", cg_code_name(e.code), e.msg);
	}
	return rc;
}

/* A decimal option value in [min, max]: digits only, no sign, no overflow. */
static bool parse_uint_opt(const char *opt, const char *v, uint64_t max, int64_t *out)
{
	uint64_t x = 0;
	size_t n = strspn(v, "0123456789");
	for (size_t i = 0; i < n && x <= max; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	if (n == 0 || v[n] || n > 20 || x > max) {
		fprintf(stderr, "clawgrid: model: %s: a whole number from 0 to %llu\n", opt, (unsigned long long)max);
		return false;
	}
	*out = (int64_t)x;
	return true;
}

static int fail(struct cli *c, const cg_err *e)
{
	fprintf(stderr, "clawgrid: %s: %s\n", cg_code_name(e->code), e->msg);
	return EXIT_FAIL;
}

int cmd_model(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *sub = argv[1];
	const char *arg = NULL, *name = NULL;
	int64_t max_tokens = 0, seed = -1;
	double temp = -1;
	const char *text = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--max-tokens") == 0 && i + 1 < argc) {
			if (!parse_uint_opt("--max-tokens", argv[++i], 1 << 20, &max_tokens))
				return EXIT_USAGE;
		} else if (strcmp(argv[i], "--temperature") == 0 && i + 1 < argc) {
			char *end;
			const char *v = argv[++i];
			temp = strtod(v, &end);
			if (end == v || *end || !(temp >= 0 && temp <= 2)) {
				fprintf(stderr, "clawgrid: model: --temperature: a number from 0 to 2\n");
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			if (!parse_uint_opt("--seed", argv[++i], UINT32_MAX, &seed))
				return EXIT_USAGE;
		}
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "clawgrid: model %s: unknown option %s\n", sub, argv[i]);
			return EXIT_USAGE;
		} else if (!arg)
			arg = argv[i];
		else if (!text)
			text = argv[i];
		else {
			fprintf(stderr, "clawgrid: model %s: too many arguments\n", sub);
			return EXIT_USAGE;
		}
	}
	char folder[4200];
	folder_of(c, folder, sizeof folder);
	json_t *res = NULL;
	bool offline = false;
	int rc;
	cg_err e;
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
		rc = try_node(c, "model.list", NULL, &res, &offline);
		if (offline) {
			if (model_folder_list(folder, &res, &e) != 0)
				return fail(c, &e);
			print_list(c, res);
		} else if (rc == EXIT_OK) {
			print_list(c, json_object_get(res, "models"));
		}
		json_decref(res);
		return offline ? EXIT_OK : rc;
	}
	if (!arg && strcmp(sub, "status") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "add") == 0) {
		char abs[PATH_MAX];
		if (!realpath(arg, abs)) {
			fprintf(stderr, "clawgrid: model add: cannot find %s\n", arg);
			return EXIT_FAIL;
		}
		json_t *p = json_pack("{s:s}", "path", abs);
		if (name)
			json_object_set_new(p, "name", json_string(name));
		rc = try_node(c, "model.add", p, &res, &offline);
		json_decref(p);
		if (offline) {
			if (model_folder_add(folder, abs, name, &res, &e) != 0)
				return fail(c, &e);
			rc = EXIT_OK;
		}
		if (rc == EXIT_OK)
			cli_print(c, res);
		json_decref(res);
		return rc;
	}
	if (strcmp(sub, "rm") == 0) {
		json_t *p = json_pack("{s:s}", "name", arg);
		rc = try_node(c, "model.rm", p, &res, &offline);
		json_decref(p);
		if (offline) {
			if (model_folder_rm(folder, arg, &e) != 0)
				return fail(c, &e);
			res = json_pack("{s:s,s:b}", "name", arg, "removed", 1);
			rc = EXIT_OK;
		}
		if (rc == EXIT_OK)
			cli_print(c, res);
		json_decref(res);
		return rc;
	}
	if (strcmp(sub, "info") == 0) {
		json_t *p = json_pack("{s:s}", "name", arg);
		rc = try_node(c, "model.info", p, &res, &offline);
		json_decref(p);
		if (offline) {
			json_t *list;
			if (model_folder_list(folder, &list, &e) != 0)
				return fail(c, &e);
			size_t i;
			json_t *m;
			json_array_foreach(list, i, m) if (strcmp(json_string_value(json_object_get(m, "name")), arg) == 0)
				res = json_incref(m);
			json_decref(list);
			if (!res) {
				fprintf(stderr, "clawgrid: E_NOT_FOUND: no model named %s\n", arg);
				return EXIT_FAIL;
			}
			rc = EXIT_OK;
		}
		if (rc == EXIT_OK)
			cli_print(c, res);
		json_decref(res);
		return rc;
	}
	json_t *p = NULL;
	const char *method = NULL;
	if (strcmp(sub, "load") == 0 || strcmp(sub, "unload") == 0) {
		method = sub[0] == 'l' ? "model.load" : "model.unload";
		p = json_pack("{s:s}", "name", arg);
	} else if (strcmp(sub, "status") == 0) {
		method = "model.status";
	} else if (strcmp(sub, "chat") == 0) {
		if (!text) {
			usage(stderr);
			return EXIT_USAGE;
		}
		method = "model.chat";
		p = json_pack("{s:s,s:[{s:s,s:s}]}", "model", arg, "messages", "role", "user", "content", text);
		if (max_tokens > 0)
			json_object_set_new(p, "max_tokens", json_integer(max_tokens));
		if (temp >= 0)
			json_object_set_new(p, "temperature", json_real(temp));
		if (seed >= 0)
			json_object_set_new(p, "seed", json_integer(seed));
	} else {
		fprintf(stderr, "clawgrid: model: unknown command '%s'\n", sub);
		usage(stderr);
		return EXIT_USAGE;
	}
	rc = cli_rpc(c, method, p, &res);
	json_decref(p);
	if (rc == EXIT_OK) {
		if (strcmp(sub, "chat") == 0 && !c->json) {
			json_t *msg = json_object_get(json_array_get(json_object_get(res, "choices"), 0), "message");
			printf("%s\n", json_string_value(json_object_get(msg, "content")) ?: "");
		} else {
			cli_print(c, res);
		}
	}
	json_decref(res);
	return rc;
}
