/* clawgrid resource|offer|order|lease|ledger|settle|dispute|audit — thin clients of the running node's
 * market.* / web3.resources.* JSON-RPC methods (docs/market.md).
 *
 * Positional arguments fill the method's main parameters; any other parameter is given as --name VALUE
 * (--ttl-ms 60000 -> "ttlMs": 60000). Values that look like JSON objects or arrays are parsed as JSON;
 * numeric parameters become integers. --actor ID acts as that actor; without it, commands act as this
 * node (its wallet address). --params JSON merges raw parameters. --json prints machine-readable output. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/cli.h"

enum actor_mode {
	A_NONE, /* reads: no actor */
	A_SELF, /* writes: --actor, else this node */
	A_WEB3, /* without --actor use the web3.resources.* variant (acts as this node) */
};

struct sub {
	const char *group, *name, *method, *web3_method;
	enum actor_mode actor;
	const char *pos[4]; /* positional parameter names; "@resource" = a JSON file or - for stdin */
	const char *help;
};

static const struct sub subs[] = {
	{"resource", "publish", "market.resource.publish", "web3.resources.publish", A_WEB3, {"@resource"},
	 "FILE|-  publish a resource (JSON: kind, label, price, offer, ...)"},
	{"resource", "unpublish", "market.resource.unpublish", "web3.resources.unpublish", A_WEB3, {"resourceId"},
	 "RESOURCE_ID"},
	{"resource", "get", "market.resource.get", NULL, A_NONE, {"resourceId"}, "RESOURCE_ID"},
	{"resource", "list", "market.resource.list", NULL, A_NONE, {NULL},
	 "[--kind K] [--provider-actor-id A] [--status S] [--tag T] [--limit N]"},
	{"resource", "mine", "web3.resources.list", NULL, A_NONE, {NULL}, "[--kind K] [--status S] [--tag T]  this node's"},
	{"resource", "status", "web3.resources.status", NULL, A_NONE, {NULL}, "  this node's market counters"},
	{"offer", "create", "market.offer.create", NULL, A_SELF, {"@"}, "FILE|-  (assetId, assetType, price, ...)"},
	{"offer", "publish", "market.offer.publish", NULL, A_SELF, {"offerId"}, "OFFER_ID"},
	{"offer", "update", "market.offer.update", NULL, A_SELF, {"offerId"}, "OFFER_ID [--price P] ..."},
	{"offer", "close", "market.offer.close", NULL, A_SELF, {"offerId"}, "OFFER_ID"},
	{"offer", "get", "market.offer.get", NULL, A_NONE, {"offerId"}, "OFFER_ID"},
	{"offer", "list", "market.offer.list", NULL, A_NONE, {NULL}, "[--seller-id A] [--status S] [--limit N]"},
	{"order", "create", "market.order.create", NULL, A_SELF, {"offerId"}, "OFFER_ID [--quantity N]"},
	{"order", "cancel", "market.order.cancel", NULL, A_SELF, {"orderId"}, "ORDER_ID [--reason R]"},
	{"order", "get", "market.order.get", NULL, A_NONE, {"orderId"}, "ORDER_ID"},
	{"order", "list", "market.order.list", NULL, A_NONE, {NULL}, "[--buyer-id A] [--status S] [--limit N]"},
	{"consent", "grant", "market.consent.grant", NULL, A_SELF, {"orderId"}, "ORDER_ID [--scope JSON] [--signature S]"},
	{"consent", "revoke", "market.consent.revoke", NULL, A_SELF, {"consentId"}, "CONSENT_ID [--reason R]"},
	{"consent", "get", "market.consent.get", NULL, A_NONE, {"consentId"}, "CONSENT_ID"},
	{"delivery", "issue", "market.delivery.issue", NULL, A_SELF, {"orderId"}, "ORDER_ID [--payload-ref REF]"},
	{"delivery", "revoke", "market.delivery.revoke", NULL, A_SELF, {"deliveryId"}, "DELIVERY_ID [--reason R]"},
	{"delivery", "complete", "market.delivery.complete", NULL, A_SELF, {"deliveryId"}, "DELIVERY_ID"},
	{"delivery", "get", "market.delivery.get", NULL, A_NONE, {"deliveryId"}, "DELIVERY_ID"},
	{"lease", "issue", "market.lease.issue", "web3.resources.lease", A_WEB3, {"resourceId"},
	 "RESOURCE_ID --ttl-ms N [--max-cost X] [--consumer-actor-id A]"},
	{"lease", "revoke", "market.lease.revoke", "web3.resources.revokeLease", A_WEB3, {"leaseId"},
	 "LEASE_ID [--reason R]"},
	{"lease", "get", "market.lease.get", NULL, A_NONE, {"leaseId"}, "LEASE_ID"},
	{"lease", "list", "market.lease.list", NULL, A_NONE, {NULL},
	 "[--provider-actor-id A] [--consumer-actor-id A] [--resource-id R] [--status S] [--limit N]"},
	{"lease", "sweep", "market.lease.expireSweep", NULL, A_NONE, {NULL}, "[--dry-run] [--limit N] [--now MS|ISO]"},
	{"lease", "expire-sweep", "market.lease.expireSweep", NULL, A_NONE, {NULL}, "  (same as sweep)"},
	{"lease", "revocations", "market.revocation.retry", NULL, A_NONE, {NULL},
	 "[--dry-run] [--limit N] [--max-attempts N]  retry failed revocation notifications"},
	{"ledger", "list", "market.ledger.list", NULL, A_NONE, {NULL},
	 "[--lease-id L] [--resource-id R] [--provider-actor-id A] [--since MS] [--until MS] [--limit N]"},
	{"ledger", "summary", "market.ledger.summary", NULL, A_NONE, {NULL}, "(same filters as list)"},
	{"ledger", "verify", "market.ledger.verify", NULL, A_NONE, {NULL}, "[--provider-actor-id A]"},
	{"settle", "lock", "market.settlement.lock", NULL, A_SELF, {"orderId", "payer", "amount"},
	 "ORDER_ID PAYER AMOUNT"},
	{"settle", "release", "market.settlement.release", NULL, A_SELF, {"orderId"},
	 "ORDER_ID [--payees '[{\"address\":A,\"amount\":X}]']"},
	{"settle", "refund", "market.settlement.refund", NULL, A_SELF, {"orderId"}, "ORDER_ID"},
	{"settle", "status", "market.settlement.status", NULL, A_NONE, {"orderId"}, "ORDER_ID"},
	{"settle", "flush", "market.settlement.flush", NULL, A_NONE, {NULL}, "[--limit N]"},
	{"settle", "queue", "market.settlement.queue", NULL, A_NONE, {"orderId", "payer", "amount"},
	 "[ORDER_ID PAYER AMOUNT]  queue a pending settlement, or list the queue"},
	{"settle", "balance", "market.settlement.balance", NULL, A_NONE, {"address"}, "ADDRESS"},
	{"settle", "faucet", "market.settlement.faucet", NULL, A_NONE, {"address", "amount"},
	 "ADDRESS AMOUNT  (dev only, local backend)"},
	{"settle", "repair", "market.repair.retry", NULL, A_NONE, {NULL},
	 "[--dry-run] [--limit N] [--max-attempts N]  re-run operations the backend failed"},
	{"dispute", "open", "market.dispute.open", NULL, A_SELF, {"orderId", "reason"}, "ORDER_ID REASON"},
	{"dispute", "evidence", "market.dispute.submitEvidence", NULL, A_SELF, {"disputeId", "summary", "hash"},
	 "DISPUTE_ID SUMMARY HASH [--cid CID]"},
	{"dispute", "resolve", "market.dispute.resolve", NULL, A_SELF, {"disputeId", "resolution"},
	 "DISPUTE_ID release|refund|partial [--amount X]"},
	{"dispute", "reject", "market.dispute.reject", NULL, A_SELF, {"disputeId"}, "DISPUTE_ID [--reason R]"},
	{"dispute", "get", "market.dispute.get", NULL, A_NONE, {"disputeId"}, "DISPUTE_ID"},
	{"dispute", "list", "market.dispute.list", NULL, A_NONE, {NULL}, "[--order-id O] [--status S] [--limit N]"},
	{"audit", "query", "market.audit.query", NULL, A_NONE, {NULL},
	 "[--kind K] [--ref-id ID] [--actor A] [--since MS] [--until MS] [--limit N]"},
};
#define NSUBS (sizeof subs / sizeof subs[0])

static const char *const int_keys[] = {"ttlMs",    "limit",       "now",       "since", "until",
				       "quantity", "maxAttempts", "expiresAt", NULL};

static void usage(FILE *f, const char *group)
{
	fprintf(f, "usage: clawgrid [--json] %s COMMAND [ARGS] [--actor ID] [--params JSON] [--name VALUE ...]\n",
		group);
	for (size_t i = 0; i < NSUBS; i++)
		if (strcmp(subs[i].group, group) == 0)
			fprintf(f, "  %-9s %s\n", subs[i].name, subs[i].help);
}

/* --ttl-ms -> ttlMs */
static void camel(const char *flag, char *out, size_t cap)
{
	size_t n = 0;
	bool up = false;
	for (const char *p = flag; *p && n + 1 < cap; p++) {
		if (*p == '-') {
			up = true;
			continue;
		}
		out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
		up = false;
	}
	out[n] = 0;
}

static bool is_int_key(const char *k)
{
	for (int i = 0; int_keys[i]; i++)
		if (strcmp(int_keys[i], k) == 0)
			return true;
	return false;
}

static json_t *value_of(const char *key, const char *v)
{
	if (is_int_key(key)) {
		char *end;
		long long x = strtoll(v, &end, 10);
		if (*v && !*end)
			return json_integer(x);
	}
	if (v[0] == '{' || v[0] == '[') {
		json_t *j = json_loads(v, 0, NULL);
		if (j)
			return j;
	}
	if (strcmp(v, "true") == 0)
		return json_true();
	if (strcmp(v, "false") == 0)
		return json_false();
	return json_string(v);
}

#define JSON_FILE_MAX (1u << 20) /* a resource or offer document is a few KiB; the node caps bodies anyway */

/* Reads a JSON object from a file, or stdin for "-", at most JSON_FILE_MAX bytes. */
static json_t *read_json(const char *path)
{
	bool in = strcmp(path, "-") == 0;
	const char *what = in ? "stdin" : "file";
	int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "clawgrid: cannot open the file: %s\n", strerror(errno));
		return NULL;
	}
	buf b;
	buf_init(&b, JSON_FILE_MAX);
	char chunk[4096];
	ssize_t n;
	bool big = false;
	while ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && buf_append(&b, chunk, (size_t)n) < 0) {
			big = true;
			break;
		}
	int rerr = n < 0 ? errno : 0;
	if (!in)
		close(fd);
	json_t *j = NULL;
	json_error_t je;
	if (big)
		fprintf(stderr, "clawgrid: %s: larger than %u bytes\n", what, JSON_FILE_MAX);
	else if (rerr)
		fprintf(stderr, "clawgrid: %s: %s\n", what, strerror(rerr));
	else if (!(j = json_loadb((const char *)b.data, b.len, 0, &je)))
		fprintf(stderr, "clawgrid: %s: invalid JSON (line %d: %s)\n", what, je.line, je.text);
	else if (!json_is_object(j)) {
		fprintf(stderr, "clawgrid: expected a JSON object\n");
		json_decref(j);
		j = NULL;
	}
	buf_done(&b);
	return j;
}

/* This node's actor id (its wallet address), asked from the node. */
static int self_actor(struct cli *c, char out[128])
{
	json_t *st = NULL;
	int rc = cli_rpc(c, "web3.resources.status", NULL, &st);
	if (rc != EXIT_OK)
		return rc;
	const char *a = json_string_value(json_object_get(st, "actorId"));
	if (!a) {
		json_decref(st);
		fprintf(stderr, "clawgrid: the node has no actor id; pass --actor\n");
		return EXIT_FAIL;
	}
	snprintf(out, 128, "%s", a);
	json_decref(st);
	return EXIT_OK;
}

/* Short text renderings for people; --json prints the result as is. */
static void print_text(const struct sub *s, json_t *res)
{
	/* One line per item: its id, its state and one telling field. */
	static const struct {
		const char *key, *id, *state, *extra;
	} lists[] = {
		{"resources", "resourceId", "status", "label"}, {"offers", "offerId", "status", "assetId"},
		{"orders", "orderId", "status", "amount"},      {"leases", "leaseId", "status", "resourceId"},
		{"entries", "ledgerId", "unit", "cost"},        {"disputes", "disputeId", "status", "orderId"},
		{"events", "id", "kind", "refId"},              {NULL, NULL, NULL, NULL},
	};
	if (strcmp(s->method, "market.ledger.verify") == 0) {
		bool ok = json_is_true(json_object_get(res, "ok"));
		printf("ledger %s: %lld entries, %lld providers\n", ok ? "OK" : "BROKEN",
		       (long long)json_integer_value(json_object_get(res, "entries")),
		       (long long)json_integer_value(json_object_get(res, "providers")));
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(res, "errors"), i, x)
			printf("  %s seq %lld: %s\n", json_string_value(json_object_get(x, "providerActorId")),
			       (long long)json_integer_value(json_object_get(x, "seq")),
			       json_string_value(json_object_get(x, "problem")));
		return;
	}
	for (int k = 0; lists[k].key; k++) {
		json_t *arr = json_object_get(res, lists[k].key);
		if (!json_is_array(arr))
			continue;
		size_t i;
		json_t *x;
		json_array_foreach(arr, i, x)
		{
			const char *id = json_string_value(json_object_get(x, lists[k].id));
			const char *st = json_string_value(json_object_get(x, lists[k].state));
			const char *extra = json_string_value(json_object_get(x, lists[k].extra));
			printf("%-34s %-26s %s\n", id ? id : "", st ? st : "", extra ? extra : "");
		}
		printf("(%zu)\n", json_array_size(arr));
		return;
	}
	char *d = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (d) {
		puts(d);
		free(d);
	}
}

int cmd_market(struct cli *c, int argc, char **argv)
{
	const char *group = argv[0];
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout, group);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const struct sub *s = NULL;
	for (size_t i = 0; i < NSUBS; i++)
		if (strcmp(subs[i].group, group) == 0 && strcmp(subs[i].name, argv[1]) == 0)
			s = &subs[i];
	if (!s) {
		fprintf(stderr, "clawgrid %s: unknown command '%s'\n", group, argv[1]);
		usage(stderr, group);
		return EXIT_USAGE;
	}
	json_t *p = json_object();
	const char *actor = NULL;
	int npos = 0, rc = EXIT_OK;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0)
			continue;
		if (strcmp(a, "--dry-run") == 0) {
			json_object_set_new(p, "dryRun", json_true());
		} else if (strncmp(a, "--", 2) == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "clawgrid %s %s: %s needs a value\n", group, s->name, a);
				rc = EXIT_USAGE;
				goto out;
			}
			const char *v = argv[++i];
			if (strcmp(a, "--actor") == 0) {
				actor = v;
			} else if (strcmp(a, "--params") == 0) {
				json_t *j = json_loads(v, 0, NULL);
				if (!json_is_object(j)) {
					json_decref(j);
					fprintf(stderr, "clawgrid: --params must be a JSON object\n");
					rc = EXIT_USAGE;
					goto out;
				}
				json_object_update(p, j);
				json_decref(j);
			} else {
				char key[64];
				camel(a + 2, key, sizeof key);
				json_object_set_new(p, key, value_of(key, v));
			}
		} else {
			if (npos >= 4 || !s->pos[npos]) {
				fprintf(stderr, "clawgrid %s %s: unexpected argument\n", group, s->name);
				rc = EXIT_USAGE;
				goto out;
			}
			const char *name = s->pos[npos++];
			if (name[0] == '@') {
				json_t *j = read_json(a);
				if (!j) {
					rc = EXIT_USAGE;
					goto out;
				}
				if (name[1] && !json_object_get(j, name + 1))
					json_object_set_new(p, name + 1, j); /* a bare resource object */
				else {
					json_object_update(p, j);
					json_decref(j);
				}
			} else {
				json_object_set_new(p, name, json_string(a));
			}
		}
	}
	const char *method = s->method;
	/* `settle queue` without arguments lists the queue. */
	if (strcmp(s->method, "market.settlement.queue") == 0 && npos == 0)
		method = "market.settlement.queueList";
	char self[128];
	if (actor) {
		json_object_set_new(p, "actorId", json_string(actor));
	} else if (s->actor == A_WEB3) {
		method = s->web3_method;
	} else if (s->actor == A_SELF) {
		if ((rc = self_actor(c, self)) != EXIT_OK)
			goto out;
		json_object_set_new(p, "actorId", json_string(self));
	}
	json_t *res = NULL;
	rc = cli_rpc(c, method, p, &res);
	if (rc == EXIT_OK) {
		if (c->json)
			cli_print(c, res);
		else
			print_text(s, res);
		/* A broken ledger is a failure for scripts too. */
		if (strcmp(method, "market.ledger.verify") == 0 && !json_is_true(json_object_get(res, "ok")))
			rc = EXIT_FAIL;
		json_decref(res);
	}
out:
	json_decref(p);
	return rc;
}
