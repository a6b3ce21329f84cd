/* The seccomp policy language: parser (pure, bounded) and compiler (libseccomp -> BPF, or OCI JSON). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox/policy.h"

/* Named constants a policy may use as values. Only what a syscall filter plausibly needs. */
static const struct {
	const char *name;
	uint64_t v;
} consts[] = {
	{"AF_UNIX", AF_UNIX},
	{"AF_LOCAL", AF_LOCAL},
	{"AF_INET", AF_INET},
	{"AF_INET6", AF_INET6},
	{"AF_NETLINK", AF_NETLINK},
	{"AF_PACKET", AF_PACKET},
	{"AF_VSOCK", AF_VSOCK},
	{"SOCK_STREAM", SOCK_STREAM},
	{"SOCK_DGRAM", SOCK_DGRAM},
	{"SOCK_RAW", SOCK_RAW},
	{"SOCK_SEQPACKET", SOCK_SEQPACKET},
	{"SOCK_NONBLOCK", SOCK_NONBLOCK},
	{"SOCK_CLOEXEC", SOCK_CLOEXEC},
	{"TIOCSTI", TIOCSTI},
	{"TIOCLINUX", TIOCLINUX},
	{"TIOCSCTTY", TIOCSCTTY},
	{"TIOCSETD", TIOCSETD},
	{"FIONREAD", FIONREAD},
	{"CLONE_VM", CLONE_VM},
	{"CLONE_FS", CLONE_FS},
	{"CLONE_FILES", CLONE_FILES},
	{"CLONE_SIGHAND", CLONE_SIGHAND},
	{"CLONE_THREAD", CLONE_THREAD},
	{"CLONE_NEWNS", CLONE_NEWNS},
	{"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
	{"CLONE_NEWUTS", CLONE_NEWUTS},
	{"CLONE_NEWIPC", CLONE_NEWIPC},
	{"CLONE_NEWUSER", CLONE_NEWUSER},
	{"CLONE_NEWPID", CLONE_NEWPID},
	{"CLONE_NEWNET", CLONE_NEWNET},
	{"CLONE_NEWTIME", 0x00000080},
	{"PROT_READ", PROT_READ},
	{"PROT_WRITE", PROT_WRITE},
	{"PROT_EXEC", PROT_EXEC},
	{"O_RDONLY", O_RDONLY},
	{"O_WRONLY", O_WRONLY},
	{"O_RDWR", O_RDWR},
	{"O_ACCMODE", O_ACCMODE},
	{"O_CREAT", O_CREAT},
	{"__O_TMPFILE", 020000000}, /* the bit of O_TMPFILE that is not O_DIRECTORY */
	{"S_ISUID", 04000},
	{"S_ISGID", 02000},
};

static const struct {
	const char *name;
	int v;
} errnos[] = {
	{"EPERM", EPERM},     {"ENOENT", ENOENT},	  {"EACCES", EACCES}, {"EINVAL", EINVAL},
	{"ENOSYS", ENOSYS},   {"EAFNOSUPPORT", EAFNOSUPPORT}, {"EOPNOTSUPP", EOPNOTSUPP},
	{"ENOTSUP", ENOTSUP}, {"EAGAIN", EAGAIN},	  {"ENOMEM", ENOMEM}, {"EBADF", EBADF},
	{"ENOTTY", ENOTTY},   {"EROFS", EROFS},		  {"ESRCH", ESRCH},
};

/* Decimal or 0x-hex, no sign, no overflow. */
static int parse_num(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return -1;
		v = v * (uint64_t)base + d;
	}
	*out = v;
	return 0;
}

/* VALUE := part ('|' part)*, part := number | constant. Modifies nothing (works on a copy). */
static int parse_value(const char *tok, uint64_t *out)
{
	char tmp[SANDBOX_POLICY_MAX_LINE];
	snprintf(tmp, sizeof tmp, "%s", tok);
	uint64_t v = 0;
	char *p = tmp;
	for (;;) {
		char *bar = strchr(p, '|');
		if (bar)
			*bar = 0;
		uint64_t part;
		if (parse_num(p, &part) != 0) {
			bool found = false;
			for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
				if (strcmp(consts[i].name, p) == 0) {
					part = consts[i].v;
					found = true;
					break;
				}
			if (!found)
				return -1;
		}
		v |= part;
		if (!bar)
			break;
		p = bar + 1;
	}
	*out = v;
	return 0;
}

static int parse_errno(const char *tok, uint16_t *out)
{
	uint64_t v;
	if (parse_num(tok, &v) == 0) {
		if (v == 0 || v > 4095)
			return -1;
		*out = (uint16_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (strcmp(errnos[i].name, tok) == 0) {
			*out = (uint16_t)errnos[i].v;
			return 0;
		}
	return -1;
}

/* Parses ACTION at toks[*i]; returns 1 if a token was consumed as an action, 0 if none is there, -1 bad. */
static int parse_action(char **toks, int ntok, int *i, uint8_t *act, uint16_t *err)
{
	const char *t = toks[*i];
	if (strcmp(t, "allow") == 0)
		*act = SBA_ALLOW;
	else if (strcmp(t, "kill") == 0)
		*act = SBA_KILL;
	else if (strcmp(t, "log") == 0)
		*act = SBA_LOG;
	else if (strcmp(t, "trap") == 0)
		*act = SBA_TRAP;
	else if (strcmp(t, "errno") == 0) {
		if (*i + 1 >= ntok || parse_errno(toks[*i + 1], err) != 0)
			return -1;
		*act = SBA_ERRNO;
		(*i)++;
	} else
		return 0;
	(*i)++;
	return 1;
}

static int parse_op(const char *t)
{
	static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
	for (int k = 0; k < 6; k++)
		if (strcmp(ops[k], t) == 0)
			return k;
	if (strcmp(t, "!=32") == 0)
		return SBO_NE32;
	return -1;
}

#define FAIL(...) return cg_fail(e, CG_E_INVALID_ARGUMENT, __VA_ARGS__)

static int parse_line(char *line, unsigned lineno, struct sandbox_policy *p, size_t *cap, bool *have_default,
		      cg_err *e)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = 0;
	char *toks[32];
	int ntok = 0;
	for (char *s = line;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s)
			break;
		if (ntok == 32)
			FAIL("policy line %u: too many words", lineno);
		toks[ntok++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r')
			s++;
		if (*s)
			*s++ = 0;
	}
	if (ntok == 0)
		return 0;

	if (strcmp(toks[0], "@default") == 0) {
		int i = 1;
		if (*have_default)
			FAIL("policy line %u: @default given twice", lineno);
		if (ntok < 2 || parse_action(toks, ntok, &i, &p->def_action, &p->def_err) != 1 || i != ntok)
			FAIL("policy line %u: @default needs one action (allow, kill, errno NAME, log, trap)", lineno);
		*have_default = true;
		return 0;
	}
	if (toks[0][0] == '@')
		FAIL("policy line %u: unknown directive", lineno);

	struct sandbox_rule r;
	memset(&r, 0, sizeof r);
	r.line = lineno;
	/* Syscall names are short identifiers; refuse anything else before asking libseccomp. */
	size_t nl = strlen(toks[0]);
	if (nl > 40)
		FAIL("policy line %u: syscall name too long", lineno);
	for (size_t k = 0; k < nl; k++) {
		char ch = toks[0][k];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			FAIL("policy line %u: '%.40s' is not a syscall name", lineno, toks[0]);
	}
	r.nr = seccomp_syscall_resolve_name(toks[0]);
	if (r.nr == __NR_SCMP_ERROR)
		FAIL("policy line %u: unknown syscall '%s'", lineno, toks[0]);

	int i = 1;
	if (i < ntok) {
		int a = parse_action(toks, ntok, &i, &r.action, &r.err);
		if (a < 0)
			FAIL("policy line %u: errno needs a name (EPERM...) or a number 1..4095", lineno);
	}
	unsigned used = 0;
	while (i < ntok) {
		const char *t = toks[i];
		if (strncmp(t, "arg", 3) != 0 || t[3] < '0' || t[3] > '5' || t[4])
			FAIL("policy line %u: expected arg0..arg5, got '%.40s'", lineno, t);
		if (r.ncond == 6)
			FAIL("policy line %u: too many conditions", lineno);
		struct sandbox_cond *c = &r.cond[r.ncond];
		c->arg = (uint8_t)(t[3] - '0');
		if (used & (1u << c->arg))
			FAIL("policy line %u: arg%u is compared twice (split the rule)", lineno, c->arg);
		used |= 1u << c->arg;
		if (i + 2 >= ntok)
			FAIL("policy line %u: incomplete condition on arg%u", lineno, c->arg);
		if (strcmp(toks[i + 1], "&") == 0) {
			if (i + 4 >= ntok || strcmp(toks[i + 3], "==") != 0)
				FAIL("policy line %u: masked condition is argN & MASK == VALUE", lineno);
			if (parse_value(toks[i + 2], &c->mask) != 0 || parse_value(toks[i + 4], &c->value) != 0)
				FAIL("policy line %u: bad number or unknown constant", lineno);
			c->op = SBO_MASKED_EQ;
			i += 5;
		} else {
			int op = parse_op(toks[i + 1]);
			if (op < 0)
				FAIL("policy line %u: unknown operator '%.8s'", lineno, toks[i + 1]);
			if (parse_value(toks[i + 2], &c->value) != 0)
				FAIL("policy line %u: bad number or unknown constant '%.40s'", lineno, toks[i + 2]);
			if (op == SBO_NE32 && c->value > 0xffffffffu)
				FAIL("policy line %u: !=32 needs a 32-bit value", lineno);
			c->op = (uint8_t)op;
			i += 3;
		}
		r.ncond++;
	}
	if (p->n == SANDBOX_POLICY_MAX_RULES)
		FAIL("policy line %u: more than %d rules", lineno, SANDBOX_POLICY_MAX_RULES);
	if (p->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct sandbox_rule *nr = realloc(p->rules, nc * sizeof *nr);
		if (!nr)
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		p->rules = nr;
		*cap = nc;
	}
	p->rules[p->n++] = r;
	return 0;
}

int sandbox_policy_parse(const char *text, size_t len, struct sandbox_policy **out, cg_err *e)
{
	if (len > SANDBOX_POLICY_MAX_BYTES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "policy: larger than %u bytes", SANDBOX_POLICY_MAX_BYTES);
	struct sandbox_policy *p = calloc(1, sizeof *p);
	if (!p)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	p->def_action = SBA_ERRNO;
	p->def_err = EPERM;
	size_t cap = 0;
	bool have_default = false;
	unsigned lineno = 0;
	size_t pos = 0;
	int rc = 0;
	while (pos < len) {
		lineno++;
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		size_t n = end - pos;
		if (n >= SANDBOX_POLICY_MAX_LINE) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "policy line %u: longer than %d bytes", lineno,
				     SANDBOX_POLICY_MAX_LINE - 1);
			break;
		}
		char line[SANDBOX_POLICY_MAX_LINE];
		memcpy(line, text + pos, n);
		line[n] = 0;
		if (memchr(line, 0, n)) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "policy line %u: NUL byte", lineno);
			break;
		}
		rc = parse_line(line, lineno, p, &cap, &have_default, e);
		if (rc)
			break;
		pos = end + 1;
	}
	if (rc == 0 && !have_default)
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "policy: missing '@default ACTION' line");
	if (rc == 0 && p->n == 0)
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "policy: no rules");
	if (rc) {
		sandbox_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void sandbox_policy_free(struct sandbox_policy *p)
{
	if (!p)
		return;
	free(p->rules);
	free(p);
}

static uint32_t scmp_action(uint8_t act, uint16_t err)
{
	switch (act) {
	case SBA_ALLOW:
		return SCMP_ACT_ALLOW;
	case SBA_KILL:
		return SCMP_ACT_KILL_PROCESS;
	case SBA_LOG:
		return SCMP_ACT_LOG;
	case SBA_TRAP:
		return SCMP_ACT_TRAP;
	default:
		return SCMP_ACT_ERRNO(err);
	}
}

static const enum scmp_compare scmp_ops[] = {
	[SBO_EQ] = SCMP_CMP_EQ, [SBO_NE] = SCMP_CMP_NE, [SBO_LT] = SCMP_CMP_LT,
	[SBO_LE] = SCMP_CMP_LE, [SBO_GT] = SCMP_CMP_GT, [SBO_GE] = SCMP_CMP_GE,
	[SBO_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
	[SBO_NE32] = SCMP_CMP_MASKED_EQ, /* placeholder: add_ne32() writes the real comparisons */
};

static void to_scmp(const struct sandbox_cond *c, struct scmp_arg_cmp *a)
{
	a->arg = c->arg;
	a->op = scmp_ops[c->op];
	if (c->op == SBO_MASKED_EQ) {
		a->datum_a = c->mask;
		a->datum_b = c->value;
	} else {
		a->datum_a = c->value;
		a->datum_b = 0;
	}
}

/* argN !=32 V is "upper half zero and lower half != V". seccomp compares 64 bits and libseccomp allows one
 * comparison per argument, so it becomes 32 masked-equality rules: for each bit i, "bits 63..32 zero,
 * bits 31..i+1 equal V's, bit i differs". Every 32-bit x != V matches exactly the rule of its highest bit
 * that differs from V; V itself and any value with upper bits matches none. */
static int add_ne32(scmp_filter_ctx ctx, const struct sandbox_rule *r, unsigned k, uint32_t action)
{
	struct scmp_arg_cmp a[6];
	for (unsigned j = 0; j < r->ncond; j++)
		to_scmp(&r->cond[j], &a[j]);
	uint64_t v = r->cond[k].value;
	for (unsigned i = 0; i < 32; i++) {
		uint64_t bits = (0xffffffffull << i) & 0xffffffffull; /* bits 31..i */
		a[k].op = SCMP_CMP_MASKED_EQ;
		a[k].datum_a = 0xffffffff00000000ull | bits;
		a[k].datum_b = (v & bits & ~(1ull << i)) | (~v & (1ull << i));
		int rc = seccomp_rule_add_array(ctx, action, r->nr, r->ncond, a);
		if (rc)
			return rc;
	}
	return 0;
}

static scmp_filter_ctx build_ctx(const struct sandbox_policy *p, cg_err *e)
{
	scmp_filter_ctx ctx = seccomp_init(scmp_action(p->def_action, p->def_err));
	if (!ctx) {
		cg_fail(e, CG_E_INTERNAL, "seccomp_init failed");
		return NULL;
	}
	/* no_new_privs is set by the sandbox itself (bwrap and runsc set it too); other ABIs (i386 via
	 * int 0x80, x32) would reach syscalls under different numbers, so they kill. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) {
		seccomp_release(ctx);
		cg_fail(e, CG_E_INTERNAL, "seccomp attributes refused");
		return NULL;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct sandbox_rule *r = &p->rules[i];
		uint32_t action = scmp_action(r->action, r->err);
		if (action == scmp_action(p->def_action, p->def_err)) {
			seccomp_release(ctx);
			cg_fail(e, CG_E_INVALID_ARGUMENT, "policy line %u: same action as @default", r->line);
			return NULL;
		}
		int ne32 = -1;
		for (unsigned k = 0; k < r->ncond; k++)
			if (r->cond[k].op == SBO_NE32)
				ne32 = (int)k;
		int rc;
		if (ne32 >= 0) {
			rc = add_ne32(ctx, r, (unsigned)ne32, action);
		} else {
			struct scmp_arg_cmp a[6];
			for (unsigned k = 0; k < r->ncond; k++)
				to_scmp(&r->cond[k], &a[k]);
			rc = seccomp_rule_add_array(ctx, action, r->nr, r->ncond, a);
		}
		if (rc) {
			seccomp_release(ctx);
			cg_fail(e, CG_E_INVALID_ARGUMENT, "policy line %u: libseccomp refused the rule (%s)", r->line,
				strerror(-rc));
			return NULL;
		}
	}
	return ctx;
}

int sandbox_policy_bpf(const struct sandbox_policy *p, uint8_t **prog, size_t *len, cg_err *e)
{
	scmp_filter_ctx ctx = build_ctx(p, e);
	if (!ctx)
		return -(int)e->code;
	int rc = 0;
	uint8_t *out = NULL;
	int fd = memfd_create("clawgrid-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = cg_fail(e, CG_E_INTERNAL, "memfd_create: %s", strerror(errno));
		goto out;
	}
	if (seccomp_export_bpf(ctx, fd) != 0) {
		rc = cg_fail(e, CG_E_INTERNAL, "seccomp_export_bpf failed");
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	/* A classic BPF program has at most 4096 instructions of 8 bytes. */
	if (size <= 0 || size > 4096 * 8 || size % 8) {
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "policy compiles to %lld bytes of BPF (max 32768)",
			     (long long)size);
		goto out;
	}
	out = malloc((size_t)size);
	if (!out || pread(fd, out, (size_t)size, 0) != size) {
		rc = cg_fail(e, CG_E_INTERNAL, "reading the compiled policy failed");
		goto out;
	}
	*prog = out;
	*len = (size_t)size;
	out = NULL;
out:
	free(out);
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}

static const char *oci_action(uint8_t act)
{
	/* SCMP_ACT_KILL (thread) rather than _KILL_PROCESS: older gVisor knows only the former. */
	static const char *const n[] = {"SCMP_ACT_ALLOW", "SCMP_ACT_KILL", "SCMP_ACT_ERRNO",
					"SCMP_ACT_LOG", "SCMP_ACT_TRAP"};
	return n[act < 5 ? act : 2];
}

/* jansson integers are signed 64-bit; OCI values are uint64. Values above INT64_MAX become the string
 * "u64:N", which sandbox_policy_oci_fix() turns back into a bare number in the serialized text. */
static json_t *u64_json(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	char t[32];
	snprintf(t, sizeof t, "u64:%llu", (unsigned long long)v);
	return json_string(t);
}

static json_t *oci_arg(unsigned idx, const char *op, uint64_t a, uint64_t b)
{
	return json_pack("{s:I,s:o,s:o,s:s}", "index", (json_int_t)idx, "value", u64_json(a), "valueTwo",
			 u64_json(b), "op", op);
}

void sandbox_policy_oci_fix(char *text)
{
	char *w = text;
	for (const char *r = text; *r;) {
		if (strncmp(r, "\"u64:", 5) == 0) {
			const char *d = r + 5;
			size_t n = strspn(d, "0123456789");
			if (n && d[n] == '"') {
				memmove(w, d, n);
				w += n;
				r = d + n + 1;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = 0;
}

json_t *sandbox_policy_oci(const struct sandbox_policy *p)
{
	static const char *const opn[] = {"SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
					  "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"};
	json_t *o = json_pack("{s:s,s:[s]}", "defaultAction", oci_action(p->def_action), "architectures",
			      "SCMP_ARCH_X86_64");
	if (p->def_action == SBA_ERRNO)
		json_object_set_new(o, "defaultErrnoRet", json_integer(p->def_err));
	json_t *sys = json_array();
	for (size_t i = 0; i < p->n; i++) {
		const struct sandbox_rule *r = &p->rules[i];
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
		if (!name)
			continue; /* a pseudo-syscall absent on this architecture */
		int ne32 = -1;
		json_t *args = json_array();
		for (unsigned k = 0; k < r->ncond; k++) {
			const struct sandbox_cond *c = &r->cond[k];
			if (c->op == SBO_NE32)
				ne32 = (int)k;
			else if (c->op == SBO_MASKED_EQ)
				json_array_append_new(args, oci_arg(c->arg, opn[c->op], c->mask, c->value));
			else
				json_array_append_new(args, oci_arg(c->arg, opn[c->op], c->value, 0));
		}
		/* The same expansion as add_ne32: one OCI rule per bit. */
		for (unsigned bit = 0; bit < (ne32 >= 0 ? 32u : 1u); bit++) {
			json_t *a = json_deep_copy(args);
			if (ne32 >= 0) {
				uint64_t v = r->cond[ne32].value, bits = (0xffffffffull << bit) & 0xffffffffull;
				json_array_append_new(a, oci_arg(r->cond[ne32].arg, "SCMP_CMP_MASKED_EQ",
								 0xffffffff00000000ull | bits,
								 (v & bits & ~(1ull << bit)) | (~v & (1ull << bit))));
			}
			json_t *rule = json_pack("{s:[s],s:s,s:o}", "names", name, "action", oci_action(r->action),
						 "args", a);
			if (r->action == SBA_ERRNO)
				json_object_set_new(rule, "errnoRet", json_integer(r->err));
			json_array_append_new(sys, rule);
		}
		json_decref(args);
		free(name);
	}
	json_object_set_new(o, "syscalls", sys);
	return o;
}

int sandbox_policy_action_of(const struct sandbox_policy *p, const char *syscall_name)
{
	int nr = seccomp_syscall_resolve_name(syscall_name);
	if (nr == __NR_SCMP_ERROR)
		return -1;
	bool any = false;
	for (size_t i = 0; i < p->n; i++) {
		if (p->rules[i].nr != nr)
			continue;
		if (p->rules[i].ncond == 0)
			return p->rules[i].action;
		any = true;
	}
	return any ? -2 : p->def_action;
}
