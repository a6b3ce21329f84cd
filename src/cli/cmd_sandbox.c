/* clawgrid sandbox run|check|policy — isolated execution from the command line (works without a node; the
 * defaults come from the "sandbox" section of the data directory's config.json when there is one). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandbox/policy.h"
#include "sandbox/sandbox.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: clawgrid sandbox run [OPTIONS] -- CMD [ARGS...]\n"
		"       clawgrid sandbox check [--json]\n"
		"       clawgrid sandbox policy\n\n"
		"run options (defaults from config.json \"sandbox\", else the values shown):\n"
		"  --backend B     native (default), bwrap or runsc\n"
		"  --mem SIZE      memory of the whole process tree (512M)\n"
		"  --cpus N        CPU bandwidth in cores, e.g. 0.5 (1)\n"
		"  --pids N        processes and threads (256)\n"
		"  --timeout DUR   wall clock, e.g. 30s, 500ms, 2m (60s); the whole tree is killed\n"
		"  --disk SIZE     size of the private /tmp and /work (64M)\n"
		"  --nofile N      open files per process (256)\n"
		"  --output-cap SIZE  bytes kept of stdout and of stderr each (1M)\n"
		"  --ro PATH       bind a host path read-only at the same place (repeatable)\n"
		"  --rw PATH       bind a host path read-write (repeatable)\n"
		"  --stdin FILE    feed FILE to the command's stdin (default: empty)\n"
		"  --env NAME=VAL  set an environment variable (repeatable; replaces the default set)\n"
		"  --gpu LIST      pass NVIDIA devices: all, 0,1 or /dev/nvidia0,...\n"
		"  --policy FILE   seccomp policy file instead of the built-in one\n"
		"  --json          print the JSON report (with the output) instead of the output\n\n"
		"The command's exit status is returned (128+N when signal N ended it); 1 or 2 when the\n"
		"sandbox itself could not run it.\n");
}

static char *read_all(const char *path, size_t max)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return NULL;
	char *p = malloc(max + 1);
	size_t n = p ? fread(p, 1, max + 1, f) : 0;
	fclose(f);
	if (!p || n > max) {
		free(p);
		return NULL;
	}
	p[n] = 0;
	return p;
}

static int load_defaults(struct cli *c, struct sandbox_defaults *d)
{
	sandbox_defaults_init(d);
	char *cfg = cli_read_file(c, "config.json", 1 << 20);
	if (!cfg)
		return 0;
	json_error_t je;
	json_t *root = json_loads(cfg, 0, &je);
	free(cfg);
	cg_err e;
	int rc = 0;
	if (root && (rc = sandbox_config_parse(json_object_get(root, "sandbox"), d, &e)) != 0)
		fprintf(stderr, "clawgrid sandbox: config.json: %s\n", e.msg);
	json_decref(root);
	return rc ? EXIT_USAGE : 0;
}

/* --gpu all | 0,1 | /dev/nvidia0,... -> device node list (plus the control nodes that exist). */
static int parse_gpus(const char *arg, char **out, size_t cap, size_t *n)
{
	static const char *const ctl[] = {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
					  "/dev/nvidia-modeset"};
	*n = 0;
	if (strcmp(arg, "all") == 0) {
		for (int i = 0; i < 16 && *n + 5 < cap; i++) {
			char p[32];
			snprintf(p, sizeof p, "/dev/nvidia%d", i);
			if (access(p, F_OK) == 0)
				out[(*n)++] = strdup(p);
		}
		if (*n == 0) {
			fprintf(stderr, "clawgrid sandbox: --gpu all: no /dev/nvidia[0-9]* device on this host\n");
			return -1;
		}
	} else {
		char tmp[512];
		snprintf(tmp, sizeof tmp, "%s", arg);
		for (char *p = tmp, *comma; p && *p; p = comma ? comma + 1 : NULL) {
			comma = strchr(p, ',');
			if (comma)
				*comma = 0;
			if (*n + 5 >= cap)
				return -1;
			char dev[600];
			if (p[0] == '/')
				snprintf(dev, sizeof dev, "%s", p);
			else if (strspn(p, "0123456789") == strlen(p) && strlen(p) <= 3)
				snprintf(dev, sizeof dev, "/dev/nvidia%.3s", p);
			else {
				fprintf(stderr, "clawgrid sandbox: --gpu: '%s' is not an index or /dev/nvidia* path\n", p);
				return -1;
			}
			out[(*n)++] = strdup(dev);
		}
	}
	for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++)
		if (access(ctl[i], F_OK) == 0)
			out[(*n)++] = strdup(ctl[i]);
	out[*n] = NULL;
	return 0;
}

static int run_cmd(struct cli *c, int argc, char **argv)
{
	struct sandbox_spec s;
	sandbox_spec_init(&s);
	struct sandbox_mount mounts[SANDBOX_MAX_MOUNTS];
	char *env[130];
	size_t nenv = 0;
	char *gpus[SANDBOX_MAX_GPUS + 8] = {NULL};
	size_t ngpu = 0;
	char *policy = NULL;
	bool backend_set = false, json = false;
	int rc = EXIT_USAGE, i = 1;
	struct sandbox_defaults d;
	cg_err e;
	cg_err_clear(&e);
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--json") == 0) {
			json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			rc = EXIT_OK;
			goto out;
		}
		if (a[0] != '-')
			break;
		if (i + 1 >= argc) {
			fprintf(stderr, "clawgrid sandbox: %s needs a value\n", a);
			goto out;
		}
		const char *v = argv[++i];
		uint64_t u;
		int prc = 0;
		if (strcmp(a, "--backend") == 0) {
			if (sandbox_backend_parse(v, &s.backend) != 0) {
				fprintf(stderr, "clawgrid sandbox: --backend: native, bwrap or runsc\n");
				goto out;
			}
			backend_set = true;
		} else if (strcmp(a, "--mem") == 0) {
			prc = sandbox_parse_size(v, &s.mem_bytes, &e);
		} else if (strcmp(a, "--disk") == 0) {
			prc = sandbox_parse_size(v, &s.disk_bytes, &e);
		} else if (strcmp(a, "--output-cap") == 0) {
			if ((prc = sandbox_parse_size(v, &u, &e)) == 0) {
				if (u < 1 || u > (1u << 30)) {
					fprintf(stderr, "clawgrid sandbox: --output-cap: 1 byte to 1G\n");
					goto out;
				}
				s.out_cap = (size_t)u;
			}
		} else if (strcmp(a, "--cpus") == 0) {
			prc = sandbox_parse_cpus(v, &s.cpu_millis, &e);
		} else if (strcmp(a, "--timeout") == 0) {
			prc = sandbox_parse_duration(v, &s.timeout_ms, &e);
		} else if (strcmp(a, "--pids") == 0 || strcmp(a, "--nofile") == 0) {
			u = 0;
			size_t nd = strspn(v, "0123456789");
			for (size_t k = 0; k < nd && k < 8; k++)
				u = u * 10 + (uint64_t)(v[k] - '0');
			if (nd == 0 || nd > 7 || v[nd] || u == 0 || u > (1u << 22)) {
				fprintf(stderr, "clawgrid sandbox: %s: a number from 1 to 4194304\n", a);
				goto out;
			}
			if (strcmp(a, "--pids") == 0)
				s.pids = (uint32_t)u;
			else
				s.nofile = (uint32_t)u;
		} else if (strcmp(a, "--ro") == 0 || strcmp(a, "--rw") == 0) {
			if (s.n_mounts == SANDBOX_MAX_MOUNTS) {
				fprintf(stderr, "clawgrid sandbox: at most %d --ro/--rw\n", SANDBOX_MAX_MOUNTS);
				goto out;
			}
			mounts[s.n_mounts].path = v;
			mounts[s.n_mounts++].rw = a[3] == 'w';
		} else if (strcmp(a, "--stdin") == 0) {
			s.stdin_path = v;
		} else if (strcmp(a, "--env") == 0) {
			if (nenv == 128 || !strchr(v, '=') || v[0] == '=') {
				fprintf(stderr, "clawgrid sandbox: --env NAME=VALUE (at most 128)\n");
				goto out;
			}
			env[nenv++] = (char *)v;
		} else if (strcmp(a, "--gpu") == 0) {
			if (parse_gpus(v, gpus, sizeof gpus / sizeof gpus[0], &ngpu) != 0) {
				rc = EXIT_FAIL;
				goto out;
			}
			s.gpus = (const char *const *)gpus;
		} else if (strcmp(a, "--policy") == 0) {
			free(policy);
			if (!(policy = read_all(v, SANDBOX_POLICY_MAX_BYTES))) {
				fprintf(stderr, "clawgrid sandbox: --policy: cannot read the file (or larger than %u)\n",
					SANDBOX_POLICY_MAX_BYTES);
				goto out;
			}
			s.policy = policy;
		} else {
			fprintf(stderr, "clawgrid sandbox: unknown option %s\n", a);
			usage(stderr);
			goto out;
		}
		if (prc) {
			fprintf(stderr, "clawgrid sandbox: %s: %s\n", a, e.msg);
			goto out;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "clawgrid sandbox: no command given (sandbox run [OPTIONS] -- CMD ...)\n");
		goto out;
	}
	if ((rc = load_defaults(c, &d)) != 0)
		goto out;
	sandbox_defaults_apply(&d, &s, !backend_set);
	s.argv = argv + i;
	s.mounts = mounts;
	if (nenv) {
		env[nenv] = NULL;
		s.env = env;
	}
	json = json || c->json;

	struct sandbox_result r;
	if (sandbox_run(&s, &r, &e) != 0) {
		if (json) {
			json_t *o = json_pack("{s:s,s:s}", "error", cg_code_name(e.code), "message", e.msg);
			char *t = json_dumps(o, JSON_INDENT(2));
			printf("%s\n", t);
			free(t);
			json_decref(o);
		} else {
			fprintf(stderr, "clawgrid sandbox: %s: %s\n", cg_code_name(e.code), e.msg);
		}
		rc = e.code == CG_E_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAIL;
		goto out;
	}
	if (json) {
		json_t *o = sandbox_result_json(&r, true);
		char *t = json_dumps(o, JSON_INDENT(2));
		printf("%s\n", t);
		free(t);
		json_decref(o);
	} else {
		fwrite(r.out.data ? (const char *)r.out.data : "", 1, r.out.len, stdout);
		fflush(stdout);
		fwrite(r.err.data ? (const char *)r.err.data : "", 1, r.err.len, stderr);
		if (r.killed_by != SANDBOX_KILL_NONE) {
			const char *sn = r.signal ? sigabbrev_np(r.signal) : NULL;
			fprintf(stderr, "clawgrid sandbox: killed by %s%s%s%s%s\n", sandbox_kill_name(r.killed_by),
				sn ? " (SIG" : "", sn ? sn : "", sn ? ")" : "",
				r.out_truncated || r.err_truncated ? " (output truncated)" : "");
		}
		else if (r.out_truncated || r.err_truncated)
			fprintf(stderr, "clawgrid sandbox: output truncated at %zu bytes\n", r.out.cap);
	}
	rc = r.signal ? 128 + r.signal : r.exit_code;
	sandbox_result_done(&r);
out:
	for (size_t k = 0; k < ngpu; k++)
		free(gpus[k]);
	free(policy);
	return rc;
}

static void print_verdict(const char *label, json_t *v)
{
	json_t *ok = json_object_get(v, "ok");
	const char *why = json_string_value(json_object_get(v, "why"));
	printf("  %-10s %s%s%s\n", label, json_is_true(ok) ? "ok" : "NO", why ? ": " : "", why ? why : "");
}

static int check_cmd(struct cli *c, int argc, char **argv)
{
	bool json = c->json;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	json_t *r = sandbox_check();
	bool native_ok = json_is_true(json_object_get(json_object_get(json_object_get(r, "backends"), "native"), "ok"));
	if (json) {
		char *t = json_dumps(r, JSON_INDENT(2));
		printf("%s\n", t);
		free(t);
	} else {
		printf("running as uid %lld (%s)\n", (long long)json_integer_value(json_object_get(r, "euid")),
		       json_is_true(json_object_get(r, "rootless")) ? "rootless" : "root");
		printf("namespaces:\n");
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(r, "namespaces"), k, v)
		{
			if (json_is_object(v))
				print_verdict(k, v);
			else
				printf("  note: %s\n", json_string_value(v));
		}
		printf("seccomp:\n");
		print_verdict("filter", json_object_get(r, "seccomp"));
		json_t *cg = json_object_get(r, "cgroup");
		printf("cgroups: memory via %s, pids via %s, cpu via %s, kill via %s\n",
		       json_string_value(json_object_get(cg, "memory")), json_string_value(json_object_get(cg, "pids")),
		       json_string_value(json_object_get(cg, "cpu")), json_string_value(json_object_get(cg, "kill")));
		if (json_object_get(cg, "v2_why"))
			printf("  cgroup v2 limits unavailable: %s\n", json_string_value(json_object_get(cg, "v2_why")));
		if (json_object_get(cg, "notes"))
			printf("  %s\n", json_string_value(json_object_get(cg, "notes")));
		printf("binds:\n");
		print_verdict("idmapped", json_object_get(r, "idmapped_binds"));
		printf("backends:\n");
		json_object_foreach(json_object_get(r, "backends"), k, v) print_verdict(k, v);
		json_t *gpu = json_object_get(r, "gpu");
		if (json_array_size(gpu)) {
			printf("gpu devices:");
			size_t i;
			json_array_foreach(gpu, i, v) printf(" %s", json_string_value(v));
			printf("\n");
		} else {
			printf("gpu: none (%s)\n", json_string_value(json_object_get(r, "gpu_why")));
		}
	}
	json_decref(r);
	return native_ok ? EXIT_OK : EXIT_FAIL;
}

int cmd_sandbox(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "run") == 0)
		return run_cmd(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return check_cmd(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "policy") == 0) {
		size_t n;
		const char *t = sandbox_policy_default_text(&n);
		fwrite(t, 1, n, stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "clawgrid sandbox: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
