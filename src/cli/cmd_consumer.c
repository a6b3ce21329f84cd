/* `clawgrid search|storage|chat|provider`: the consumer tools of a running node (src/consumer/consumer.h).
 * Lease tokens never reach this process: the node holds them and calls the provider. `chat` streams the
 * answer to the terminal through the node's POST /web3/consumer/chat (SSE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "base/buf.h"
#include "base/enc.h"
#include "cli/cli.h"
#include "http/sse.h"

struct opts {
	const char *provider, *resource, *mime, *site, *out;
	long long limit, max_tokens, ttl_ms;
	bool renew;
	const char *pos[64];
	int npos;
};

static void usage(FILE *f)
{
	fprintf(f, "usage:\n"
		   "  clawgrid search [--provider NAME] --resource ID [--limit N] [--site S] QUERY...\n"
		   "  clawgrid storage put [--provider NAME] --resource ID PATH [FILE|-] [--mime TYPE]\n"
		   "  clawgrid storage get [--provider NAME] --resource ID PATH [--out FILE]\n"
		   "  clawgrid storage ls  [--provider NAME] --resource ID [PREFIX] [--limit N]\n"
		   "  clawgrid chat [--provider NAME] --resource ID [--max-tokens N] TEXT...\n"
		   "  clawgrid provider list | resources [NAME] | lease [--provider NAME] --resource ID [--ttl-ms N] [--renew]\n"
		   "  clawgrid provider receipts [--lease ID]\n");
}

static int parse(int argc, char **argv, int from, struct opts *o)
{
	memset(o, 0, sizeof *o);
	for (int i = from; i < argc; i++) {
		const char *a = argv[i];
		const char **s = NULL;
		long long *n = NULL;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--renew")) {
			o->renew = true;
			continue;
		}
		if (!strcmp(a, "--provider"))
			s = &o->provider;
		else if (!strcmp(a, "--resource"))
			s = &o->resource;
		else if (!strcmp(a, "--mime"))
			s = &o->mime;
		else if (!strcmp(a, "--site"))
			s = &o->site;
		else if (!strcmp(a, "--out") || !strcmp(a, "--lease"))
			s = &o->out;
		else if (!strcmp(a, "--limit"))
			n = &o->limit;
		else if (!strcmp(a, "--max-tokens"))
			n = &o->max_tokens;
		else if (!strcmp(a, "--ttl-ms"))
			n = &o->ttl_ms;
		if (s || n) {
			if (i + 1 >= argc) {
				fprintf(stderr, "clawgrid: %s needs a value\n", a);
				return -1;
			}
			if (s) {
				*s = argv[++i];
			} else {
				char *end;
				*n = strtoll(argv[++i], &end, 10);
				if (*end || *n <= 0) {
					fprintf(stderr, "clawgrid: %s must be a positive integer\n", a);
					return -1;
				}
			}
			continue;
		}
		if (a[0] == '-' && a[1]) {
			fprintf(stderr, "clawgrid: unknown option %s\n", a);
			return -1;
		}
		if (o->npos < 64)
			o->pos[o->npos++] = a;
	}
	return 0;
}

static json_t *base_params(const struct opts *o)
{
	json_t *p = json_object();
	if (o->provider)
		json_object_set_new(p, "provider", json_string(o->provider));
	if (o->resource)
		json_object_set_new(p, "resourceId", json_string(o->resource));
	return p;
}

static char *join(const struct opts *o, int from)
{
	buf b;
	buf_init(&b, 1 << 20);
	for (int i = from; i < o->npos; i++)
		if ((i > from && buf_putc(&b, ' ') < 0) || buf_append(&b, o->pos[i], strlen(o->pos[i])) < 0)
			break;
	char *s = strdup(buf_cstr(&b));
	buf_done(&b);
	return s;
}

static int call(struct cli *c, const char *method, json_t *params, json_t **res)
{
	int rc = cli_rpc(c, method, params, res);
	json_decref(params);
	return rc;
}

static int need_resource(const struct opts *o)
{
	if (o->resource)
		return 0;
	fprintf(stderr, "clawgrid: --resource ID is required\n");
	return -1;
}

static void print_receipt(json_t *r)
{
	if (!json_is_object(r)) {
		fprintf(stderr, "receipt: none (the provider did not meter this call)\n");
		return;
	}
	if (!json_is_true(json_object_get(r, "verified"))) {
		fprintf(stderr, "receipt: REJECTED (%s)\n", json_string_value(json_object_get(r, "error")) ?: "invalid");
		return;
	}
	json_t *in = json_object_get(r, "receipt");
	if (!in)
		in = r;
	fprintf(stderr, "receipt: %s %s %s = %s %s (verified)\n", json_string_value(json_object_get(in, "ledgerId")) ?: "-",
		json_string_value(json_object_get(in, "quantity")) ?: "-", json_string_value(json_object_get(in, "unit")) ?: "",
		json_string_value(json_object_get(in, "cost")) ?: "-", json_string_value(json_object_get(in, "currency")) ?: "");
}

static int cmd_search(struct cli *c, struct opts *o)
{
	if (need_resource(o) < 0 || o->npos < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	json_t *p = base_params(o), *res = NULL;
	char *q = join(o, 0);
	json_object_set_new(p, "q", json_string(q));
	free(q);
	if (o->limit)
		json_object_set_new(p, "limit", json_integer(o->limit));
	if (o->site)
		json_object_set_new(p, "site", json_string(o->site));
	int rc = call(c, "web3.search.query", p, &res);
	if (rc != EXIT_OK)
		return rc;
	if (c->json) {
		cli_print(c, res);
	} else {
		size_t i;
		json_t *r;
		json_array_foreach(json_object_get(res, "results"), i, r) {
			printf("%zu. %s\n   %s\n   %s\n", i + 1, json_string_value(json_object_get(r, "title")) ?: "",
			       json_string_value(json_object_get(r, "url")) ?: "",
			       json_string_value(json_object_get(r, "snippet")) ?: "");
		}
		print_receipt(json_object_get(res, "receipt"));
	}
	json_decref(res);
	return EXIT_OK;
}

static char *read_all(const char *path, size_t *n)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
	if (!f)
		return NULL;
	buf b;
	buf_init(&b, 8u << 20);
	char tmp[65536];
	size_t got;
	int bad = 0;
	while ((got = fread(tmp, 1, sizeof tmp, f)) > 0)
		if (buf_append(&b, tmp, got) < 0) {
			bad = 1;
			break;
		}
	if (f != stdin)
		fclose(f);
	if (bad) {
		buf_done(&b);
		return NULL;
	}
	*n = b.len;
	char *s = (char *)buf_steal(&b, NULL);
	return s ? s : strdup("");
}

static int cmd_storage(struct cli *c, struct opts *o, const char *sub)
{
	if (need_resource(o) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	json_t *p = base_params(o), *res = NULL;
	int rc;
	if (!strcmp(sub, "put")) {
		if (o->npos < 1) {
			json_decref(p);
			usage(stderr);
			return EXIT_USAGE;
		}
		size_t n = 0;
		char *data = read_all(o->npos > 1 ? o->pos[1] : "-", &n);
		if (!data) {
			json_decref(p);
			fprintf(stderr, "clawgrid: cannot read the input (missing, or over 8 MiB)\n");
			return EXIT_FAIL;
		}
		char *b64 = malloc(base64_encoded_len(n, false) + 1);
		base64_encode(b64, (const uint8_t *)data, n, false);
		free(data);
		json_object_set_new(p, "path", json_string(o->pos[0]));
		json_object_set_new(p, "bytesBase64", json_string(b64));
		free(b64);
		if (o->mime)
			json_object_set_new(p, "mime", json_string(o->mime));
		if ((rc = call(c, "web3.storage.put", p, &res)) != EXIT_OK)
			return rc;
		if (c->json) {
			cli_print(c, res);
		} else {
			printf("%s %lld bytes etag %s\n", json_string_value(json_object_get(res, "path")) ?: "",
			       (long long)json_integer_value(json_object_get(res, "size")),
			       json_string_value(json_object_get(res, "etag")) ?: "");
			print_receipt(json_object_get(res, "receipt"));
		}
	} else if (!strcmp(sub, "get")) {
		if (o->npos < 1) {
			json_decref(p);
			usage(stderr);
			return EXIT_USAGE;
		}
		json_object_set_new(p, "path", json_string(o->pos[0]));
		if ((rc = call(c, "web3.storage.get", p, &res)) != EXIT_OK)
			return rc;
		if (c->json) {
			cli_print(c, res);
		} else {
			const char *b64 = json_string_value(json_object_get(res, "bytesBase64")) ?: "";
			uint8_t *raw = malloc(base64_decoded_max(strlen(b64)) + 1);
			long n = raw ? base64_decode(raw, b64, strlen(b64), false) : -1;
			FILE *f = o->out ? fopen(o->out, "wbe") : stdout;
			if (n < 0 || !f) {
				free(raw);
				json_decref(res);
				fprintf(stderr, "clawgrid: cannot write the object\n");
				return EXIT_FAIL;
			}
			fwrite(raw, 1, (size_t)n, f);
			if (f != stdout)
				fclose(f);
			free(raw);
			print_receipt(json_object_get(res, "receipt"));
		}
	} else if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
		if (o->npos > 0)
			json_object_set_new(p, "prefix", json_string(o->pos[0]));
		if (o->limit)
			json_object_set_new(p, "limit", json_integer(o->limit));
		if ((rc = call(c, "web3.storage.list", p, &res)) != EXIT_OK)
			return rc;
		if (c->json) {
			cli_print(c, res);
		} else {
			size_t i;
			json_t *it;
			json_array_foreach(json_object_get(res, "items"), i, it) {
				printf("%10lld  %.12s  %s\n", (long long)json_integer_value(json_object_get(it, "size")),
				       json_string_value(json_object_get(it, "etag")) ?: "",
				       json_string_value(json_object_get(it, "path")) ?: "");
			}
		}
	} else {
		json_decref(p);
		usage(stderr);
		return EXIT_USAGE;
	}
	json_decref(res);
	return EXIT_OK;
}

/* ---- chat: SSE to the terminal ---- */

struct chat_state {
	struct sse_parser sse;
	bool json, receipt_ok, done, failed;
	buf err; /* the body of a non-200 reply */
	CURL *h;
};

static int chat_event(void *arg, const char *event, const char *data, size_t len)
{
	struct chat_state *s = arg;
	if (s->json) {
		printf("%s%s%s\n", *event ? event : "", *event ? ": " : "", data);
		fflush(stdout);
	}
	if (!strcmp(data, "[DONE]")) {
		s->done = true;
		return 0;
	}
	json_t *j = json_loadb(data, len, 0, NULL);
	if (!strcmp(event, "receipt")) {
		if (!s->json) {
			printf("\n");
			print_receipt(j);
		}
		s->receipt_ok = json_is_true(json_object_get(j, "verified"));
	} else if (!strcmp(event, "error") || json_object_get(j, "error")) {
		json_t *err = json_object_get(j, "error");
		fprintf(stderr, "\nclawgrid: %s: %s\n", json_string_value(json_object_get(err, "code")) ?: "E_UNAVAILABLE",
			json_string_value(json_object_get(err, "message")) ?: "stream failed");
		s->failed = true;
	} else if (!s->json) {
		json_t *delta = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
		const char *t = json_string_value(json_object_get(delta, "content"));
		if (t) {
			fputs(t, stdout);
			fflush(stdout);
		}
	}
	json_decref(j);
	return 0;
}

static size_t chat_write(char *p, size_t sz, size_t n, void *arg)
{
	struct chat_state *s = arg;
	long status = 0;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) /* an error reply: one JSON object, printed once it is complete */
		return buf_append(&s->err, p, sz * n) == 0 ? sz * n : 0;
	cg_err e;
	return sse_feed(&s->sse, p, sz * n, &e) < 0 ? 0 : sz * n;
}

static int cmd_chat(struct cli *c, struct opts *o)
{
	if (need_resource(o) < 0 || o->npos < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char *text = join(o, 0);
	json_t *p = base_params(o);
	json_object_set_new(p, "messages", json_pack("[{s:s,s:s}]", "role", "user", "content", text));
	free(text);
	if (o->max_tokens)
		json_object_set_new(p, "max_tokens", json_integer(o->max_tokens));
	char *body = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	/* The node's address and admin token exactly as cli_rpc finds them: never a guessed 127.0.0.1:7878, where
	 * another program may listen and would be handed the admin token. */
	char addr[300], url[400], authz[4200];
	cg_err e;
	int arc = cli_node_addr(c, addr, sizeof addr, &e);
	if (arc == EXIT_OK)
		arc = cli_admin_authz(c, authz, sizeof authz, &e);
	if (arc != EXIT_OK) {
		free(body);
		cli_print_error(c, &e);
		return arc;
	}
	snprintf(url, sizeof url, "http://%s/web3/consumer/chat", addr);
	struct chat_state st = {.json = c->json};
	buf_init(&st.err, 65536);
	sse_init(&st.sse, 1u << 20, chat_event, &st);
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Accept: text/event-stream");
	hdr = curl_slist_append(hdr, authz);
	sodium_memzero(authz, sizeof authz);
	cli_curl_defaults(h);
	st.h = h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, chat_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(body);
	int rc = EXIT_OK;
	if (cc != CURLE_OK) {
		fprintf(stderr, "clawgrid: cannot reach the node at %s: %s\n", addr, curl_easy_strerror(cc));
		rc = EXIT_NONODE;
	} else if (status == 401) {
		fprintf(stderr, "clawgrid: the node refused the admin token\n");
		rc = EXIT_AUTH;
	} else if (status != 200) {
		/* An error reply is one JSON object (kept aside by chat_write): print its code and message. */
		json_t *j = json_loadb(st.err.data ? (const char *)st.err.data : "", st.err.len, 0, NULL);
		json_t *err = json_object_get(j, "error");
		const char *code = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		if (!msg)
			msg = json_string_value(err);
		if (msg)
			fprintf(stderr, "clawgrid: %s%s%s\n", code && strncmp(msg, code, strlen(code)) ? code : "",
				code && strncmp(msg, code, strlen(code)) ? ": " : "", msg);
		else
			fprintf(stderr, "clawgrid: chat failed (HTTP %ld)\n", status);
		json_decref(j);
		rc = EXIT_FAIL;
	} else if (st.failed || !st.done) {
		rc = EXIT_FAIL;
	}
	sse_done(&st.sse);
	buf_done(&st.err);
	return rc;
}

static int cmd_provider(struct cli *c, struct opts *o, const char *sub)
{
	json_t *res = NULL, *p;
	int rc;
	if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
		if ((rc = call(c, "web3.provider.list", NULL, &res)) != EXIT_OK)
			return rc;
		if (c->json) {
			cli_print(c, res);
		} else {
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(res, "providers"), i, v) {
				printf("%-16s %-54s %s\n", json_string_value(json_object_get(v, "name")) ?: "",
				       json_string_value(json_object_get(v, "peerId")) ?: "-",
				       json_string_value(json_object_get(v, "actorId")) ?: "-");
			}
		}
	} else if (!strcmp(sub, "resources")) {
		p = json_object();
		const char *name = o->provider ? o->provider : o->npos ? o->pos[0] : NULL;
		if (name)
			json_object_set_new(p, "provider", json_string(name));
		if ((rc = call(c, "web3.provider.resources", p, &res)) != EXIT_OK)
			return rc;
		if (c->json) {
			cli_print(c, res);
		} else {
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(res, "resources"), i, v) {
				json_t *pr = json_object_get(v, "price");
				printf("%-24s %-8s %s %s/%s  %s\n", json_string_value(json_object_get(v, "resourceId")) ?: "",
				       json_string_value(json_object_get(v, "kind")) ?: "",
				       json_string_value(json_object_get(pr, "amount")) ?: "",
				       json_string_value(json_object_get(pr, "currency")) ?: "",
				       json_string_value(json_object_get(pr, "unit")) ?: "",
				       json_string_value(json_object_get(v, "label")) ?: "");
			}
		}
	} else if (!strcmp(sub, "lease")) {
		if (need_resource(o) < 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
		p = base_params(o);
		if (o->ttl_ms)
			json_object_set_new(p, "ttlMs", json_integer(o->ttl_ms));
		if (o->renew)
			json_object_set_new(p, "renew", json_true());
		if ((rc = call(c, "web3.provider.lease", p, &res)) != EXIT_OK)
			return rc;
		cli_print(c, res);
	} else if (!strcmp(sub, "receipts")) {
		p = json_object();
		if (o->out)
			json_object_set_new(p, "leaseId", json_string(o->out));
		if ((rc = call(c, "web3.consumer.receipts", p, &res)) != EXIT_OK)
			return rc;
		cli_print(c, res);
	} else {
		usage(stderr);
		return EXIT_USAGE;
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_consumer(struct cli *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return EXIT_OK;
	}
	bool has_sub = !strcmp(cmd, "storage") || !strcmp(cmd, "provider");
	if (has_sub && argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	struct opts o;
	if (parse(argc, argv, has_sub ? 2 : 1, &o) < 0)
		return EXIT_USAGE;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			c->json = true;
	if (!strcmp(cmd, "search"))
		return cmd_search(c, &o);
	if (!strcmp(cmd, "chat"))
		return cmd_chat(c, &o);
	if (!strcmp(cmd, "storage"))
		return cmd_storage(c, &o, argv[1]);
	if (!strcmp(cmd, "provider"))
		return cmd_provider(c, &o, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
