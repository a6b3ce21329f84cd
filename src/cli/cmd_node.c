/* `clawgrid init`, `clawgrid node`, `clawgrid id`: the data directory, the daemon and the identity. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/enc.h"
#include "cli/cli.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "node/config.h"
#include "node/node.h"

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static int unknown_args(int argc, char **argv, const char *const *allowed, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		bool ok = false;
		for (int k = 0; allowed[k] && !ok; k++)
			ok = strcmp(argv[i], allowed[k]) == 0;
		if (!ok) {
			fprintf(stderr, "clawgrid %s: unexpected argument '%s'\nusage: %s\n", argv[0], argv[i], usage);
			return 1;
		}
	}
	return 0;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return (mkdir(tmp, 0700) < 0 && errno != EEXIST) ? -1 : 0;
}

/* Creates name in dir with content, mode 0600, never replacing an existing file. 1 created, 0 existed. */
static int create_file(const char *dir, const char *name, const char *content, size_t n)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	bool ok = write(fd, content, n) == (ssize_t)n && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		unlink(path);
		return -1;
	}
	return 1;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

int cmd_init(struct cli *c, int argc, char **argv)
{
	static const char *const ok[] = {"--quiet-if-exists", "--json", "--help", NULL};
	if (unknown_args(argc, argv, ok, "clawgrid init [--quiet-if-exists]"))
		return EXIT_USAGE;
	if (has_flag(argc, argv, "--help")) {
		printf("usage: clawgrid [--data-dir DIR] init [--quiet-if-exists]\n"
		       "Creates the data directory (mode 0700) with node.key and wallet.key (0600), admin.token (0600)\n"
		       "and a default config.json. Running it again changes nothing: it says so and exits 1, or 0\n"
		       "silently with --quiet-if-exists.\n");
		return EXIT_OK;
	}
	bool quiet = has_flag(argc, argv, "--quiet-if-exists");
	const char *d = c->data_dir;
	bool complete = exists_in(d, "node.key") && exists_in(d, "wallet.key") && exists_in(d, "admin.token") &&
			exists_in(d, "config.json");
	if (complete) {
		if (quiet)
			return EXIT_OK;
		fprintf(stderr, "clawgrid: the data directory is already initialized (nothing changed)\n");
		return EXIT_FAIL;
	}
	if (mkdirs(d) < 0) {
		fprintf(stderr, "clawgrid: cannot create the data directory: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	struct stat st;
	if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "clawgrid: the data directory path is not a directory\n");
		return EXIT_FAIL;
	}
	if ((st.st_mode & 077) && chmod(d, 0700) < 0) {
		fprintf(stderr, "clawgrid: cannot restrict the data directory to mode 0700: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	char path[4200];
	cg_err e;
	cg_err_clear(&e);
	struct node_key *key = sodium_malloc(sizeof *key);
	struct wallet *w = sodium_malloc(sizeof *w);
	int rc = EXIT_FAIL;
	if (!key || !w) {
		fprintf(stderr, "clawgrid: out of memory\n");
		goto out;
	}
	snprintf(path, sizeof path, "%s/node.key", d);
	if (node_key_load(path, true, key, &e) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/wallet.key", d);
	if (wallet_load(path, true, w, &e) < 0)
		goto fail;

	uint8_t raw[32];
	char token[64];
	randombytes_buf(raw, sizeof raw);
	base64_encode(token, raw, sizeof raw, true);
	size_t tl = strlen(token);
	token[tl++] = '\n';
	int cr = create_file(d, "admin.token", token, tl);
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(token, sizeof token);
	if (cr < 0) {
		cg_fail(&e, CG_E_UNAVAILABLE, "cannot write admin.token: %s", strerror(errno));
		goto fail;
	}
	json_t *cfg = node_config_default();
	char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(cfg);
	if (!text) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	size_t n = strlen(text);
	text[n] = 0;
	char *line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		cr = create_file(d, "config.json", line, n + 1);
		free(line);
	} else {
		cr = -1;
	}
	free(text);
	if (cr < 0) {
		cg_fail(&e, CG_E_UNAVAILABLE, "cannot write config.json: %s", strerror(errno));
		goto fail;
	}
	char peer[PEERID_STR_MAX];
	peerid_string_from_ed25519(key->pk, peer, sizeof peer);
	if (c->json)
		printf("{\"initialized\":true,\"peerId\":\"%s\",\"address\":\"%s\"}\n", peer, w->address);
	else
		printf("initialized the data directory\npeer id  %s\naddress  %s\nnext: clawgrid node\n", peer,
		       w->address);
	rc = EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "clawgrid: init: %s\n", e.msg);
out:
	if (key) {
		node_key_wipe(key);
		sodium_free(key);
	}
	if (w) {
		wallet_wipe(w);
		sodium_free(w);
	}
	return rc;
}

int cmd_node(struct cli *c, int argc, char **argv)
{
	const char *api = c->api; /* `clawgrid --api HOST:PORT node` means the same */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
			api = argv[++i];
		} else if (strncmp(argv[i], "--api=", 6) == 0) {
			api = argv[i] + 6;
		} else if (strcmp(argv[i], "--json") == 0) {
			continue;
		} else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: clawgrid [--data-dir DIR] node [--api HOST:PORT]\n"
			       "Runs the node in the foreground until SIGTERM or SIGINT (a second signal forces exit).\n"
			       "--api overrides api.listen of config.json; port 0 picks a free port. The bound address\n"
			       "is written to <data dir>/node.api while the node runs.\n");
			return EXIT_OK;
		} else {
			fprintf(stderr, "clawgrid node: unexpected argument '%s'\nusage: clawgrid node [--api HOST:PORT]\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	return node_run(c->data_dir, api);
}

int cmd_id(struct cli *c, int argc, char **argv)
{
	static const char *const ok[] = {"--json", NULL};
	if (unknown_args(argc, argv, ok, "clawgrid id [--json]"))
		return EXIT_USAGE;
	char path[4200];
	cg_err e;
	cg_err_clear(&e);
	struct node_key *key = sodium_malloc(sizeof *key);
	struct wallet *w = sodium_malloc(sizeof *w);
	int rc = EXIT_FAIL;
	if (!key || !w)
		goto out;
	snprintf(path, sizeof path, "%s/node.key", c->data_dir);
	if (node_key_load(path, false, key, &e) == 0) {
		snprintf(path, sizeof path, "%s/wallet.key", c->data_dir);
		wallet_load(path, false, w, &e);
	}
	if (e.code != CG_OK) {
		fprintf(stderr, "clawgrid: %s%s\n", e.msg,
			e.code == CG_E_NOT_FOUND ? " (run 'clawgrid init')" : "");
		rc = e.code == CG_E_NOT_FOUND ? EXIT_NONODE : EXIT_FAIL;
		goto out;
	}
	char peer[PEERID_STR_MAX];
	peerid_string_from_ed25519(key->pk, peer, sizeof peer);
	if (c->json)
		printf("{\"peerId\":\"%s\",\"address\":\"%s\"}\n", peer, w->address);
	else
		printf("peer id  %s\naddress  %s\n", peer, w->address);
	rc = EXIT_OK;
out:
	if (key) {
		node_key_wipe(key);
		sodium_free(key);
	}
	if (w) {
		wallet_wipe(w);
		sodium_free(w);
	}
	return rc;
}
