/* `clawgrid export [FILE]` and `clawgrid import FILE`: the whole store as JSON (format in node/node_int.h).
 * Export works offline or next to a running node (one read snapshot); import refuses a running node. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "node/node_int.h"
#include "store/store.h"

#define IMPORT_MAX (1024u << 20)

static int open_store(struct cli *c, unsigned flags, struct store **st)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/node.key", c->data_dir);
	if (access(path, F_OK) < 0) {
		fprintf(stderr, "clawgrid: the data directory is not initialized (run 'clawgrid init')\n");
		return EXIT_NONODE;
	}
	snprintf(path, sizeof path, "%s/clawgrid.db", c->data_dir);
	if ((flags & STORE_READONLY) && access(path, F_OK) < 0) {
		fprintf(stderr, "clawgrid: there is no store yet (start the node once)\n");
		return EXIT_FAIL;
	}
	cg_err e;
	cg_err_clear(&e);
	if (store_open(path, flags, st, &e) < 0) {
		fprintf(stderr, "clawgrid: cannot open the store: %s\n", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (file || argv[i][0] == '-') {
			fprintf(stderr, "usage: clawgrid export [FILE]\n");
			return EXIT_USAGE;
		}
		file = argv[i];
	}
	struct store *st = NULL;
	int rc = open_store(c, STORE_READONLY, &st);
	if (rc != EXIT_OK)
		return rc;
	cg_err e;
	cg_err_clear(&e);
	json_t *doc = NULL;
	if (node_dump_export(st, &doc, &e) < 0) {
		store_close(st);
		fprintf(stderr, "clawgrid: export: %s\n", e.msg);
		return EXIT_FAIL;
	}
	store_close(st);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text) {
		fprintf(stderr, "clawgrid: export: out of memory\n");
		return EXIT_FAIL;
	}
	size_t n = strlen(text);
	rc = EXIT_OK;
	if (!file) {
		if (write_all(1, text, n) < 0 || write_all(1, "\n", 1) < 0)
			rc = EXIT_FAIL;
	} else {
		/* The store may hold hashes and signed records: the file gets the data dir's 0600. Written to a temp
		 * name and renamed so that a failed export never leaves half a file under FILE. */
		char tmp[4200];
		snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, text, n) < 0 || write_all(fd, "\n", 1) < 0 || fsync(fd) < 0 ||
		    rename(tmp, file) < 0) {
			fprintf(stderr, "clawgrid: export: cannot write the file: %s\n", strerror(errno));
			unlink(tmp);
			rc = EXIT_FAIL;
		}
		if (fd >= 0)
			close(fd);
	}
	free(text);
	return rc;
}

int cmd_import(struct cli *c, int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (file || argv[i][0] == '-') {
			fprintf(stderr, "usage: clawgrid import FILE\n");
			return EXIT_USAGE;
		}
		file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "usage: clawgrid import FILE\n");
		return EXIT_USAGE;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "clawgrid: import: cannot open the file: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	buf b;
	buf_init(&b, IMPORT_MAX);
	char tmp[65536];
	ssize_t n;
	int rc = EXIT_OK;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			fprintf(stderr, "clawgrid: import: the file is bigger than %u MiB\n", IMPORT_MAX >> 20);
			rc = EXIT_FAIL;
			break;
		}
	close(fd);
	json_error_t jerr;
	json_t *doc = rc == EXIT_OK ? json_loadb((const char *)buf_cstr(&b), b.len, 0, &jerr) : NULL;
	buf_done(&b);
	if (rc != EXIT_OK)
		return rc;
	if (!doc) {
		fprintf(stderr, "clawgrid: import: not valid JSON at line %d column %d: %s\n", jerr.line, jerr.column,
			jerr.text);
		return EXIT_FAIL;
	}
	cg_err e;
	cg_err_clear(&e);
	int lock = -1;
	char path[4200];
	snprintf(path, sizeof path, "%s/node.key", c->data_dir);
	if (access(path, F_OK) < 0) {
		json_decref(doc);
		fprintf(stderr, "clawgrid: the data directory is not initialized (run 'clawgrid init')\n");
		return EXIT_NONODE;
	}
	if (node_lock_data_dir(c->data_dir, &lock, &e) < 0) {
		json_decref(doc);
		fprintf(stderr, "clawgrid: import: %s%s\n", e.msg,
			e.code == CG_E_CONFLICT ? " (stop it first: import needs the node stopped)" : "");
		return EXIT_FAIL;
	}
	struct store *st = NULL;
	rc = open_store(c, 0, &st);
	if (rc == EXIT_OK) {
		if (node_dump_import(st, doc, &e) < 0) {
			fprintf(stderr, "clawgrid: import: %s (nothing was changed)\n", e.msg);
			rc = EXIT_FAIL;
		} else if (c->json) {
			printf("{\"imported\":true,\"tables\":%zu}\n", json_object_size(json_object_get(doc, "tables")));
		} else {
			printf("imported %zu tables\n", json_object_size(json_object_get(doc, "tables")));
		}
		store_close(st);
	}
	close(lock);
	json_decref(doc);
	return rc;
}
