/* Multiaddr binary and text forms over the multicodec protocol table. */
#include "p2p/multiaddr.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/enc.h"
#include "p2p/peerid.h"
#include "p2p/varint.h"

/* Largest multibase (certhash) value handled in text form: a multihash of a 512-bit digest fits. */
#define MB_MAX_BYTES 128

/* How a value is written as text. */
enum ma_text { T_NONE, T_IP4, T_IP6, T_PORT, T_STR, T_P2P, T_MB, T_U8, T_BIN };

struct ma_proto {
	uint32_t code;
	const char *name;
	int size; /* bytes of a fixed-size value; -1: <varint length><bytes> */
	enum ma_text text;
};

/* From the multiaddr protocols table (multiformats/multiaddr protocols.csv). T_BIN entries have no text
 * form here but can be skipped in binary. */
static const struct ma_proto protos[] = {
	{MA_IP4, "ip4", 4, T_IP4},
	{MA_TCP, "tcp", 2, T_PORT},
	{33, "dccp", 2, T_PORT},
	{MA_IP6, "ip6", 16, T_IP6},
	{MA_IP6ZONE, "ip6zone", -1, T_STR},
	{43, "ipcidr", 1, T_U8},
	{MA_DNS, "dns", -1, T_STR},
	{MA_DNS4, "dns4", -1, T_STR},
	{MA_DNS6, "dns6", -1, T_STR},
	{MA_DNSADDR, "dnsaddr", -1, T_STR},
	{132, "sctp", 2, T_PORT},
	{MA_UDP, "udp", 2, T_PORT},
	{275, "p2p-webrtc-star", 0, T_NONE},
	{276, "p2p-webrtc-direct", 0, T_NONE},
	{277, "p2p-stardust", 0, T_NONE},
	{280, "webrtc-direct", 0, T_NONE},
	{281, "webrtc", 0, T_NONE},
	{MA_P2P_CIRCUIT, "p2p-circuit", 0, T_NONE},
	{301, "udt", 0, T_NONE},
	{302, "utp", 0, T_NONE},
	{MA_UNIX, "unix", -1, T_BIN},
	{MA_P2P, "p2p", -1, T_P2P},
	{443, "https", 0, T_NONE},
	{444, "onion", 12, T_BIN},
	{445, "onion3", 37, T_BIN},
	{446, "garlic64", -1, T_BIN},
	{447, "garlic32", -1, T_BIN},
	{MA_TLS, "tls", 0, T_NONE},
	{MA_SNI, "sni", -1, T_STR},
	{MA_NOISE, "noise", 0, T_NONE},
	{MA_QUIC, "quic", 0, T_NONE},
	{MA_QUIC_V1, "quic-v1", 0, T_NONE},
	{MA_WEBTRANSPORT, "webtransport", 0, T_NONE},
	{MA_CERTHASH, "certhash", -1, T_MB},
	{MA_WS, "ws", 0, T_NONE},
	{MA_WSS, "wss", 0, T_NONE},
	{479, "p2p-websocket-star", 0, T_NONE},
	{MA_HTTP, "http", 0, T_NONE},
};

static const struct ma_proto *by_code(uint64_t code)
{
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
		if (protos[i].code == code)
			return &protos[i];
	return NULL;
}

static const struct ma_proto *by_name(const char *s, size_t n)
{
	if (n == 4 && memcmp(s, "ipfs", 4) == 0) /* legacy alias, same code */
		return by_code(MA_P2P);
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
		if (strlen(protos[i].name) == n && memcmp(protos[i].name, s, n) == 0)
			return &protos[i];
	return NULL;
}

/* Text values travel between '/' separators, so they must be printable and free of '/'. */
static bool str_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '/')
			return false;
	return true;
}

void ma_iter_init(ma_iter *it, const uint8_t *ma, size_t n)
{
	it->p = ma;
	it->end = n ? ma + n : ma;
}

int ma_next(ma_iter *it, ma_comp *c, cg_err *e)
{
	if (it->p >= it->end)
		return 0;
	size_t left = (size_t)(it->end - it->p);
	uint64_t code, len;
	int k = varint_decode(it->p, left, &code, NULL);
	if (k <= 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad protocol code");
	const struct ma_proto *pr = by_code(code);
	if (!pr)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: unknown protocol code");
	size_t off = (size_t)k;
	if (pr->size >= 0) {
		len = (uint64_t)pr->size;
	} else {
		int l = varint_decode(it->p + off, left - off, &len, NULL);
		if (l <= 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad value length");
		off += (size_t)l;
	}
	if (len > left - off)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: truncated value");
	const uint8_t *v = it->p + off;
	if (pr->text == T_STR && !str_ok(v, (size_t)len))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad text value");
	if ((pr->size < 0 && len == 0) && pr->text != T_STR)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: empty value");
	if (pr->text == T_P2P) {
		peerid id;
		int rc = peerid_from_bytes(&id, v, (size_t)len, e);
		if (rc)
			return rc;
	}
	c->code = pr->code;
	c->name = pr->name;
	c->value = v;
	c->len = (size_t)len;
	it->p = v + len;
	return 1;
}

int ma_validate(const uint8_t *ma, size_t n, cg_err *e)
{
	if (n == 0 || n > MA_MAX_BYTES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: empty or too long");
	ma_iter it;
	ma_comp c;
	int rc;
	ma_iter_init(&it, ma, n);
	while ((rc = ma_next(&it, &c, e)) == 1)
		;
	return rc;
}

static int put_comp(buf *out, uint32_t code, int size, const uint8_t *v, size_t len)
{
	if (varint_put(out, code) != 0 || (size < 0 && varint_put(out, len) != 0) ||
	    buf_append(out, v, len) != 0)
		return -CG_E_QUOTA_EXCEEDED;
	return 0;
}

static int parse_port(const char *s, size_t n, uint8_t v[2])
{
	if (n == 0 || n > 5)
		return -1;
	unsigned x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	if (x > 65535)
		return -1;
	v[0] = (uint8_t)(x >> 8);
	v[1] = (uint8_t)x;
	return 0;
}

/* Parses one text value of protocol pr into out. */
static int put_text_value(buf *out, const struct ma_proto *pr, const char *s, size_t n, cg_err *e)
{
	uint8_t v[MB_MAX_BYTES];
	char tmp[64];
	switch (pr->text) {
	case T_IP4:
	case T_IP6: {
		if (n >= sizeof tmp)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s address", pr->name);
		memcpy(tmp, s, n);
		tmp[n] = 0;
		if (inet_pton(pr->text == T_IP4 ? AF_INET : AF_INET6, tmp, v) != 1)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s address", pr->name);
		return put_comp(out, pr->code, pr->size, v, (size_t)pr->size);
	}
	case T_PORT:
		if (parse_port(s, n, v) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s port", pr->name);
		return put_comp(out, pr->code, 2, v, 2);
	case T_U8: {
		unsigned x = 0;
		if (n == 0 || n > 3)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s value", pr->name);
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s value", pr->name);
			x = x * 10 + (unsigned)(s[i] - '0');
		}
		if (x > 255)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s value", pr->name);
		v[0] = (uint8_t)x;
		return put_comp(out, pr->code, 1, v, 1);
	}
	case T_STR:
		if (!str_ok((const uint8_t *)s, n))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s value", pr->name);
		return put_comp(out, pr->code, -1, (const uint8_t *)s, n);
	case T_P2P: {
		peerid id;
		int rc = peerid_parse(&id, s, n, e);
		if (rc)
			return rc;
		return put_comp(out, pr->code, -1, id.b, id.len);
	}
	case T_MB: {
		long k = -1;
		if (n >= 2 && n < 2 * MB_MAX_BYTES && s[0] == 'u')
			k = base64_decoded_max(n - 1) <= MB_MAX_BYTES ? base64_decode(v, s + 1, n - 1, true) : -1;
		else if (n >= 2 && n < 2 * MB_MAX_BYTES && s[0] == 'b')
			k = base32_decode(v, MB_MAX_BYTES, s + 1, n - 1);
		if (k <= 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: bad %s multibase value", pr->name);
		return put_comp(out, pr->code, -1, v, (size_t)k);
	}
	default:
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: %s has no text form here", pr->name);
	}
}

int ma_from_string(buf *out, const char *s, size_t len, cg_err *e)
{
	size_t start = out->len;
	int rc = 0;
	if (len == 0 || len > MA_MAX_TEXT || s[0] != '/') {
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: text must start with '/'");
		goto out;
	}
	size_t i = 1;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '/')
			j++;
		if (j == i) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: empty component");
			goto out;
		}
		const struct ma_proto *pr = by_name(s + i, j - i);
		if (!pr) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: unknown protocol name");
			goto out;
		}
		i = j + 1;
		if (pr->size == 0) {
			if ((rc = put_comp(out, pr->code, 0, NULL, 0)))
				goto out;
			continue;
		}
		if (i > len) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: %s needs a value", pr->name);
			goto out;
		}
		j = i;
		while (j < len && s[j] != '/')
			j++;
		if ((rc = put_text_value(out, pr, s + i, j - i, e)))
			goto out;
		i = j + 1;
	}
	if (out->len - start > MA_MAX_BYTES)
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: too long");
	else if (out->len == start)
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: no components");
out:
	if (rc && out->len > start) {
		out->len = start;
		out->data[start] = 0;
	}
	return rc;
}

static int put_text(buf *out, const ma_comp *c, const struct ma_proto *pr, cg_err *e)
{
	char tmp[PEERID_TEXT_MAX + 64];
	switch (pr->text) {
	case T_NONE:
		return 0;
	case T_IP4:
	case T_IP6:
		if (!inet_ntop(pr->text == T_IP4 ? AF_INET : AF_INET6, c->value, tmp, sizeof tmp))
			return cg_fail(e, CG_E_INTERNAL, "multiaddr: cannot format address");
		return buf_printf(out, "/%s", tmp) ? -CG_E_QUOTA_EXCEEDED : 0;
	case T_PORT:
		return buf_printf(out, "/%u", (unsigned)c->value[0] << 8 | c->value[1]) ? -CG_E_QUOTA_EXCEEDED : 0;
	case T_U8:
		return buf_printf(out, "/%u", (unsigned)c->value[0]) ? -CG_E_QUOTA_EXCEEDED : 0;
	case T_STR:
		if (buf_putc(out, '/') || buf_append(out, c->value, c->len))
			return -CG_E_QUOTA_EXCEEDED;
		return 0;
	case T_P2P: {
		peerid id;
		int rc = peerid_from_bytes(&id, c->value, c->len, e);
		if (rc)
			return rc;
		if (peerid_to_string(&id, tmp, sizeof tmp) < 0)
			return cg_fail(e, CG_E_INTERNAL, "multiaddr: cannot format peer id");
		return buf_printf(out, "/%s", tmp) ? -CG_E_QUOTA_EXCEEDED : 0;
	}
	case T_MB: {
		/* Same bound as the text parser, so whatever prints also parses. */
		char mb[MB_MAX_BYTES * 4 / 3 + 8];
		if (c->len > MB_MAX_BYTES)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: %s value too long", pr->name);
		base64_encode(mb, c->value, c->len, true);
		return buf_printf(out, "/u%s", mb) ? -CG_E_QUOTA_EXCEEDED : 0;
	}
	default:
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: %s has no text form here", pr->name);
	}
}

int ma_to_string(buf *out, const uint8_t *ma, size_t n, cg_err *e)
{
	size_t start = out->len;
	int rc = ma_validate(ma, n, e);
	ma_iter it;
	ma_comp c;
	if (rc)
		return rc;
	ma_iter_init(&it, ma, n);
	while ((rc = ma_next(&it, &c, e)) == 1) {
		const struct ma_proto *pr = by_code(c.code);
		if (buf_printf(out, "/%s", c.name)) {
			rc = -CG_E_QUOTA_EXCEEDED;
			break;
		}
		if ((rc = put_text(out, &c, pr, e)))
			break;
	}
	if (rc == -CG_E_QUOTA_EXCEEDED)
		cg_fail(e, CG_E_QUOTA_EXCEEDED, "multiaddr: output buffer full");
	/* Never produce text the parser would refuse. */
	if (rc == 0 && out->len - start > MA_MAX_TEXT)
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "multiaddr: text form too long");
	if (rc && out->len > start) {
		out->len = start;
		out->data[start] = 0;
	}
	return rc;
}

int ma_dial_target(const uint8_t *ma, size_t n, struct ma_dial *out, cg_err *e)
{
	int rc = ma_validate(ma, n, e);
	if (rc)
		return rc;
	ma_iter it;
	ma_comp c, host = {0};
	bool have = false, circuit = false, found = false;
	struct ma_dial d = {0};
	ma_iter_init(&it, ma, n);
	while (ma_next(&it, &c, NULL) == 1) {
		if (c.code == MA_P2P_CIRCUIT)
			circuit = true;
		if (found)
			continue;
		if (have && c.code == MA_TCP) {
			d.port = (uint16_t)(c.value[0] << 8 | c.value[1]);
			found = true;
			continue;
		}
		have = false;
		if (c.code == MA_IP4 || c.code == MA_IP6 || c.code == MA_DNS || c.code == MA_DNS4 ||
		    c.code == MA_DNS6) {
			host = c;
			have = true;
		}
	}
	if (!found)
		return cg_fail(e, CG_E_NOT_FOUND, "multiaddr: no host and tcp port to dial");
	switch (host.code) {
	case MA_IP4:
	case MA_IP6:
		d.kind = host.code == MA_IP4 ? MA_HOST_IP4 : MA_HOST_IP6;
		if (!inet_ntop(host.code == MA_IP4 ? AF_INET : AF_INET6, host.value, d.host, sizeof d.host))
			return cg_fail(e, CG_E_INTERNAL, "multiaddr: cannot format address");
		break;
	default:
		d.kind = host.code == MA_DNS ? MA_HOST_DNS : host.code == MA_DNS4 ? MA_HOST_DNS4 : MA_HOST_DNS6;
		memcpy(d.host, host.value, host.len); /* <= 255 bytes by str_ok */
		d.host[host.len] = 0;
		break;
	}
	d.circuit = circuit;
	*out = d;
	return 0;
}

int ma_get_p2p(const uint8_t *ma, size_t n, const uint8_t **id, size_t *idlen, cg_err *e)
{
	ma_iter it;
	ma_comp c;
	const uint8_t *found = NULL;
	size_t flen = 0;
	int rc;
	ma_iter_init(&it, ma, n);
	while ((rc = ma_next(&it, &c, e)) == 1) {
		if (c.code == MA_P2P) {
			found = c.value;
			flen = c.len;
		}
	}
	if (rc)
		return rc;
	if (!found)
		return cg_fail(e, CG_E_NOT_FOUND, "multiaddr: no /p2p component");
	*id = found;
	*idlen = flen;
	return 0;
}

size_t ma_without_p2p(const uint8_t *ma, size_t n)
{
	ma_iter it;
	ma_comp c;
	size_t last_start = 0;
	uint32_t last_code = 0;
	ma_iter_init(&it, ma, n);
	for (;;) {
		size_t at = (size_t)(it.p - ma);
		int rc = ma_next(&it, &c, NULL);
		if (rc < 0)
			return n;
		if (rc == 0)
			break;
		last_start = at;
		last_code = c.code;
	}
	return last_code == MA_P2P ? last_start : n;
}

int ma_append_p2p(buf *out, const uint8_t *id, size_t idlen, cg_err *e)
{
	peerid pid;
	int rc = peerid_from_bytes(&pid, id, idlen, e);
	if (rc)
		return rc;
	size_t start = out->len;
	if (put_comp(out, MA_P2P, -1, id, idlen) != 0) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multiaddr: output buffer full");
	}
	return 0;
}

int ma_put_ip_tcp(buf *out, bool ip6, const uint8_t *addr, uint16_t port)
{
	uint8_t p[2] = {(uint8_t)(port >> 8), (uint8_t)port};
	size_t start = out->len;
	if (put_comp(out, ip6 ? MA_IP6 : MA_IP4, ip6 ? 16 : 4, addr, ip6 ? 16 : 4) ||
	    put_comp(out, MA_TCP, 2, p, 2)) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
		return -CG_E_QUOTA_EXCEEDED;
	}
	return 0;
}
