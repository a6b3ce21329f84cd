#include "crypto/eip712.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/amount.h"
#include "base/buf.h"
#include "base/enc.h"
#include "crypto/hash.h"

#define MAX_TYPES   64
#define MAX_FIELDS  64
#define MAX_DEPTH   32
#define MAX_ITEMS   4096
#define MAX_TYPESTR 8192

static const char DOMAIN[] = "EIP712Domain";

/* ---- type names ----------------------------------------------------------------------------------- */

static bool ident_ok(const char *s, size_t n)
{
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Length of the base type name of t (without any [..] suffixes). */
static size_t base_len(const char *t)
{
	const char *b = strchr(t, '[');
	return b ? (size_t)(b - t) : strlen(t);
}

/* The struct definition (array of {name,type}) named by t[0..n), or NULL when t is not a struct type. */
static json_t *struct_def(json_t *types, const char *t, size_t n)
{
	char name[129];
	if (n == 0 || n >= sizeof name)
		return NULL;
	memcpy(name, t, n);
	name[n] = '\0';
	return json_object_get(types, name);
}

/* A field type is an identifier followed by any number of "[]" or "[N]" suffixes. Checked for every field,
 * including those of structs only reached through empty arrays, because encodeType uses the text as is:
 * "uint8 a,uint8" would otherwise let two different definitions encode (and so sign) the same. */
static bool type_syntax_ok(const char *t, size_t n)
{
	size_t bl = 0;
	while (bl < n && t[bl] != '[')
		bl++;
	if (!ident_ok(t, bl))
		return false;
	for (size_t i = bl; i < n;) {
		if (t[i++] != '[')
			return false;
		size_t d = 0;
		while (i < n && t[i] >= '0' && t[i] <= '9') {
			i++;
			if (++d > 4)
				return false;
		}
		if (i >= n || t[i++] != ']')
			return false;
	}
	return true;
}

/* Validates a struct definition; returns the number of fields or a negative code. */
static int check_def(json_t *def, const char *tname, cg_err *e)
{
	if (!json_is_array(def))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types.%s: must be an array of {name, type}", tname);
	size_t n = json_array_size(def);
	if (n > MAX_FIELDS)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types.%s: more than %d fields", tname, MAX_FIELDS);
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_array_get(def, i);
		json_t *fn = json_object_get(f, "name"), *ft = json_object_get(f, "type");
		if (!json_is_string(fn) || !json_is_string(ft) ||
		    !ident_ok(json_string_value(fn), json_string_length(fn)) || json_string_length(ft) > 200 ||
		    !type_syntax_ok(json_string_value(ft), json_string_length(ft)))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "types.%s[%zu]: needs a name and a type", tname, i);
	}
	return (int)n;
}

/* ---- encodeType ----------------------------------------------------------------------------------- */

struct deps {
	const char *name[MAX_TYPES];
	size_t n;
};

static bool deps_has(const struct deps *d, const char *s, size_t n)
{
	for (size_t i = 0; i < d->n; i++)
		if (strlen(d->name[i]) == n && memcmp(d->name[i], s, n) == 0)
			return true;
	return false;
}

static int collect(json_t *types, const char *tname, struct deps *d, cg_err *e)
{
	if (deps_has(d, tname, strlen(tname)))
		return 0;
	if (d->n >= MAX_TYPES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types: more than %d struct types", MAX_TYPES);
	/* A name with "(", "," or spaces would let two different type sets encode to the same string. */
	if (!ident_ok(tname, strlen(tname)))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types: invalid struct type name %.64s", tname);
	json_t *def = json_object_get(types, tname);
	int nf = check_def(def, tname, e);
	if (nf < 0)
		return nf;
	/* Keep the key string owned by the types object (stable while it lives). */
	d->name[d->n++] = json_object_iter_key(json_object_iter_at(types, tname));
	for (int i = 0; i < nf; i++) {
		const char *ft = json_string_value(json_object_get(json_array_get(def, (size_t)i), "type"));
		size_t bl = base_len(ft);
		json_t *sub = struct_def(types, ft, bl);
		if (!sub)
			continue;
		char name[129];
		memcpy(name, ft, bl);
		name[bl] = '\0';
		int r = collect(types, name, d, e);
		if (r)
			return r;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int append_def(buf *b, json_t *types, const char *tname)
{
	json_t *def = json_object_get(types, tname);
	if (buf_printf(b, "%s(", tname))
		return -1;
	for (size_t i = 0; i < json_array_size(def); i++) {
		json_t *f = json_array_get(def, i);
		if (buf_printf(b, "%s%s %s", i ? "," : "", json_string_value(json_object_get(f, "type")),
		               json_string_value(json_object_get(f, "name"))))
			return -1;
	}
	return buf_putc(b, ')');
}

char *eip712_encode_type(json_t *types, const char *type, cg_err *e)
{
	if (!json_is_object(types) || !json_object_get(types, type)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "types: no struct type named %.64s", type);
		return NULL;
	}
	struct deps d = {.n = 0};
	if (collect(types, type, &d, e) != 0)
		return NULL;
	/* The primary type first, then its dependencies sorted by name. */
	qsort(d.name + 1, d.n - 1, sizeof d.name[0], name_cmp);
	buf b;
	buf_init(&b, MAX_TYPESTR);
	for (size_t i = 0; i < d.n; i++) {
		if (append_def(&b, types, d.name[i]) != 0) {
			buf_done(&b);
			cg_fail(e, CG_E_INVALID_ARGUMENT, "types: type encoding longer than %d bytes", MAX_TYPESTR);
			return NULL;
		}
	}
	size_t n;
	char *s = (char *)buf_steal(&b, &n);
	if (!s)
		cg_fail(e, CG_E_INTERNAL, "out of memory");
	return s;
}

/* ---- encodeData ----------------------------------------------------------------------------------- */

struct enc {
	json_t *types;
	cg_err *e;
	char path[160]; /* field path for messages, e.g. "Mail.from.wallet" */
};

static int hash_struct(struct enc *x, const char *tname, json_t *v, int depth, uint8_t out[static 32]);

static int bad(struct enc *x, const char *why)
{
	return cg_fail(x->e, CG_E_INVALID_ARGUMENT, "%s: %s", x->path, why);
}

/* Parses N of "uintN"/"intN"/"bytesN" after the prefix; 0 when malformed. */
static unsigned type_size(const char *s)
{
	if (!*s || *s == '0' || strlen(s) > 3)
		return 0;
	unsigned v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (unsigned)(*s - '0');
	}
	return v;
}

/* An integer value as sign + magnitude: JSON integer, integral JSON real (<= 2^53), or a string in
 * decimal or 0x-hex with an optional leading '-'. */
static int int_value(struct enc *x, json_t *v, bool *neg, u256 *mag)
{
	*neg = false;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		*neg = i < 0;
		/* negate in unsigned arithmetic: -INT64_MIN overflows in signed */
		u256_from_u64(mag, i < 0 ? 0 - (uint64_t)i : (uint64_t)i);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(fabs(d) <= 9007199254740992.0) || d != floor(d))
			return bad(x, "must be an integer (a real number beyond 2^53 or with a fraction is not)");
		*neg = d < 0;
		u256_from_u64(mag, (uint64_t)fabs(d));
		return 0;
	}
	if (!json_is_string(v))
		return bad(x, "must be an integer or a decimal/hex string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n && s[0] == '-') {
		*neg = true;
		s++;
		n--;
	}
	int r = (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? u256_parse_hex(s, n, mag)
	                                                               : u256_parse_dec_lenient(s, n, mag);
	if (r != 0)
		return bad(x, "must be an integer or a decimal/hex string within 256 bits");
	if (u256_is_zero(mag))
		*neg = false;
	return 0;
}

static int encode_int(struct enc *x, bool is_signed, unsigned bits, json_t *v, uint8_t out[static 32])
{
	bool neg;
	u256 mag;
	int r = int_value(x, v, &neg, &mag);
	if (r)
		return r;
	if (!is_signed) {
		if (neg || u256_bits(&mag) > bits)
			return bad(x, "out of range for its uint type");
		u256_to_be32(&mag, out);
		return 0;
	}
	/* intN: -2^(N-1) <= v < 2^(N-1) */
	unsigned mb = u256_bits(&mag);
	if (!neg && mb > bits - 1)
		return bad(x, "out of range for its int type");
	if (neg && mb > bits - 1) {
		/* only -2^(N-1) itself has N bits of magnitude */
		if (mb > bits)
			return bad(x, "out of range for its int type");
		u256 lim = {{0}};
		lim.w[(bits - 1) / 64] = 1ull << ((bits - 1) % 64);
		if (u256_cmp(&mag, &lim) != 0)
			return bad(x, "out of range for its int type");
	}
	if (neg) {
		/* two's complement over 256 bits: ~mag + 1 */
		u256 res;
		uint64_t carry = 1;
		for (int i = 0; i < 4; i++) {
			res.w[i] = ~mag.w[i] + carry;
			carry = carry && res.w[i] == 0;
		}
		u256_to_be32(&res, out);
	} else {
		u256_to_be32(&mag, out);
	}
	return 0;
}

/* 0x-hex bytes: hashes them (dynamic "bytes") or right-pads them into a word (bytesN). */
static int encode_bytes(struct enc *x, unsigned fixed, json_t *v, uint8_t out[static 32])
{
	if (!json_is_string(v))
		return bad(x, "must be a 0x-hex string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || (n - 2) % 2)
		return bad(x, "must be 0x followed by an even number of hex digits");
	size_t nb = (n - 2) / 2;
	if (fixed) {
		if (nb != fixed)
			return bad(x, "has the wrong length for its bytesN type");
		memset(out, 0, 32);
		if (hex_decode(out, nb, s + 2, n - 2, false) != 0)
			return bad(x, "must be 0x followed by hex digits");
		return 0;
	}
	struct keccak256_ctx c;
	keccak256_init(&c);
	uint8_t chunk[256];
	for (size_t off = 0; off < nb; off += sizeof chunk) {
		size_t k = nb - off < sizeof chunk ? nb - off : sizeof chunk;
		if (hex_decode(chunk, k, s + 2 + 2 * off, 2 * k, false) != 0)
			return bad(x, "must be 0x followed by hex digits");
		keccak256_update(&c, chunk, k);
	}
	keccak256_final(&c, out);
	return 0;
}

static int encode_value(struct enc *x, const char *type, size_t tlen, json_t *v, int depth, uint8_t out[static 32])
{
	if (depth > MAX_DEPTH)
		return bad(x, "nested too deeply");
	if (!v)
		return bad(x, "missing");
	/* Arrays: the last [..] is the outermost dimension; the value is keccak of the items' encodings. */
	if (tlen && type[tlen - 1] == ']') {
		size_t lb = tlen - 1;
		while (lb > 0 && type[lb] != '[')
			lb--;
		if (type[lb] != '[' || lb == 0)
			return bad(x, "malformed array type");
		size_t fixed = 0;
		bool has_fixed = lb + 1 < tlen - 1;
		for (size_t i = lb + 1; i < tlen - 1; i++) {
			if (type[i] < '0' || type[i] > '9' || fixed > MAX_ITEMS)
				return bad(x, "malformed array type");
			fixed = fixed * 10 + (size_t)(type[i] - '0');
		}
		if (!json_is_array(v))
			return bad(x, "must be an array");
		size_t n = json_array_size(v);
		if (n > MAX_ITEMS)
			return bad(x, "array longer than 4096 items");
		if (has_fixed && n != fixed)
			return bad(x, "array length differs from its fixed-size type");
		struct keccak256_ctx c;
		keccak256_init(&c);
		for (size_t i = 0; i < n; i++) {
			uint8_t w[32];
			int r = encode_value(x, type, lb, json_array_get(v, i), depth + 1, w);
			if (r)
				return r;
			keccak256_update(&c, w, 32);
		}
		keccak256_final(&c, out);
		return 0;
	}
	char t[129];
	if (tlen == 0 || tlen >= sizeof t)
		return bad(x, "unknown type");
	memcpy(t, type, tlen);
	t[tlen] = '\0';
	if (json_object_get(x->types, t))
		return hash_struct(x, json_object_iter_key(json_object_iter_at(x->types, t)), v, depth + 1, out);
	if (strcmp(t, "string") == 0) {
		if (!json_is_string(v))
			return bad(x, "must be a string");
		keccak256(out, json_string_value(v), json_string_length(v));
		return 0;
	}
	if (strcmp(t, "bytes") == 0)
		return encode_bytes(x, 0, v, out);
	if (strcmp(t, "bool") == 0) {
		if (!json_is_boolean(v))
			return bad(x, "must be true or false");
		memset(out, 0, 32);
		out[31] = json_is_true(v);
		return 0;
	}
	if (strcmp(t, "address") == 0) {
		uint8_t a[20];
		if (!json_is_string(v))
			return bad(x, "must be an address string");
		cg_err sub;
		if (eth_address_parse(json_string_value(v), a, &sub) != 0)
			return bad(x, sub.msg);
		memset(out, 0, 12);
		memcpy(out + 12, a, 20);
		return 0;
	}
	if (strncmp(t, "bytes", 5) == 0) {
		unsigned k = type_size(t + 5);
		if (k < 1 || k > 32)
			return bad(x, "unknown type");
		return encode_bytes(x, k, v, out);
	}
	bool is_signed = t[0] == 'i';
	const char *num = strncmp(t, "uint", 4) == 0 ? t + 4 : strncmp(t, "int", 3) == 0 ? t + 3 : NULL;
	if (num) {
		unsigned bits = type_size(num);
		if (bits < 8 || bits > 256 || bits % 8)
			return bad(x, "unknown type");
		return encode_int(x, is_signed, bits, v, out);
	}
	return bad(x, "unknown type");
}

static int hash_struct(struct enc *x, const char *tname, json_t *v, int depth, uint8_t out[static 32])
{
	if (depth > MAX_DEPTH)
		return bad(x, "nested too deeply");
	if (!json_is_object(v))
		return bad(x, "must be an object");
	char *ts = eip712_encode_type(x->types, tname, x->e);
	if (!ts)
		return -(int)x->e->code;
	struct keccak256_ctx c;
	uint8_t th[32];
	keccak256(th, ts, strlen(ts));
	free(ts);
	keccak256_init(&c);
	keccak256_update(&c, th, 32);
	json_t *def = json_object_get(x->types, tname);
	size_t plen = strnlen(x->path, sizeof x->path);
	for (size_t i = 0; i < json_array_size(def); i++) {
		json_t *f = json_array_get(def, i);
		const char *fname = json_string_value(json_object_get(f, "name"));
		json_t *ft = json_object_get(f, "type");
		snprintf(x->path + plen, sizeof x->path - plen, ".%s", fname);
		uint8_t w[32];
		int r =
		    encode_value(x, json_string_value(ft), json_string_length(ft), json_object_get(v, fname), depth, w);
		if (r)
			return r;
		keccak256_update(&c, w, 32);
	}
	x->path[plen] = '\0';
	keccak256_final(&c, out);
	return 0;
}

int eip712_hash_struct(json_t *types, const char *type, json_t *value, uint8_t out[static 32], cg_err *e)
{
	cg_err local;
	struct enc x = {.types = types, .e = e ? e : &local};
	if (!json_is_object(types))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types: must be an object");
	if (json_object_size(types) > MAX_TYPES + 1)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types: more than %d struct types", MAX_TYPES);
	if (!json_object_get(types, type))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "types: no struct type named %.64s", type);
	snprintf(x.path, sizeof x.path, "%.64s", type);
	return hash_struct(&x, json_object_iter_key(json_object_iter_at(types, type)), value, 0, out);
}

/* ---- typed data ----------------------------------------------------------------------------------- */

/* Returns the types object to hash with (a new reference): the given one, or a shallow copy that adds an
 * EIP712Domain derived from the domain's keys in the canonical order. */
static json_t *types_with_domain(json_t *typed, cg_err *e)
{
	json_t *types = json_object_get(typed, "types");
	json_t *domain = json_object_get(typed, "domain");
	if (!json_is_object(types)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "types: must be an object");
		return NULL;
	}
	if (!json_is_object(domain)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "domain: must be an object");
		return NULL;
	}
	if (json_object_get(types, DOMAIN))
		return json_incref(types);
	static const char *const order[][2] = {{"name", "string"},
	                                       {"version", "string"},
	                                       {"chainId", "uint256"},
	                                       {"verifyingContract", "address"},
	                                       {"salt", "bytes32"}};
	const char *k;
	json_t *val;
	json_object_foreach(domain, k, val)
	{
		bool known = false;
		for (size_t i = 0; i < 5; i++)
			known |= strcmp(k, order[i][0]) == 0;
		if (!known) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "domain: unknown key %.64s", k);
			return NULL;
		}
	}
	json_t *copy = json_copy(types), *def = json_array();
	if (!copy || !def) {
		json_decref(copy);
		json_decref(def);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < 5; i++)
		if (json_object_get(domain, order[i][0]))
			json_array_append_new(def, json_pack("{s:s,s:s}", "name", order[i][0], "type", order[i][1]));
	json_object_set_new(copy, DOMAIN, def);
	return copy;
}

static int typed_parts(json_t *typed, uint8_t dom[static 32], uint8_t msg[static 32], bool *has_msg, cg_err *e)
{
	if (!json_is_object(typed))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "typed data: must be an object");
	json_t *pt = json_object_get(typed, "primaryType");
	if (!json_is_string(pt))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "primaryType: must be a string");
	json_t *types = types_with_domain(typed, e);
	if (!types)
		return -(int)(e ? e->code : CG_E_INVALID_ARGUMENT);
	int r = eip712_hash_struct(types, DOMAIN, json_object_get(typed, "domain"), dom, e);
	*has_msg = strcmp(json_string_value(pt), DOMAIN) != 0;
	if (r == 0 && *has_msg) {
		json_t *m = json_object_get(typed, "message");
		if (!m)
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "message: missing");
		else
			r = eip712_hash_struct(types, json_string_value(pt), m, msg, e);
	}
	json_decref(types);
	return r;
}

int eip712_domain_separator(json_t *typed, uint8_t out[static 32], cg_err *e)
{
	if (!json_is_object(typed))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "typed data: must be an object");
	json_t *types = types_with_domain(typed, e);
	if (!types)
		return -(int)(e ? e->code : CG_E_INVALID_ARGUMENT);
	int r = eip712_hash_struct(types, DOMAIN, json_object_get(typed, "domain"), out, e);
	json_decref(types);
	return r;
}

int eip712_hash(json_t *typed, uint8_t out[static 32], cg_err *e)
{
	uint8_t dom[32], msg[32];
	bool has_msg = false;
	int r = typed_parts(typed, dom, msg, &has_msg, e);
	if (r)
		return r;
	struct keccak256_ctx c;
	keccak256_init(&c);
	keccak256_update(&c, "\x19\x01", 2);
	keccak256_update(&c, dom, 32);
	if (has_msg)
		keccak256_update(&c, msg, 32);
	keccak256_final(&c, out);
	return 0;
}

int eip712_sign(const struct wallet *w, json_t *typed, uint8_t sig[static 65], cg_err *e)
{
	uint8_t h[32];
	int r = eip712_hash(typed, h, e);
	if (r)
		return r;
	if (wallet_sign_hash(w, h, sig) != 0)
		return cg_fail(e, CG_E_INTERNAL, "signing failed");
	return 0;
}

int eip712_recover(json_t *typed, const uint8_t sig[static 65], uint8_t addr[static 20], cg_err *e)
{
	uint8_t h[32];
	int r = eip712_hash(typed, h, e);
	if (r)
		return r;
	if (eth_recover(h, sig, addr) != 0)
		return cg_fail(e, CG_E_AUTH_REQUIRED, "signature: invalid (no signer can be recovered)");
	return 0;
}
