/* identity: Ed25519 against RFC 8032 test 1, the key file rules (0600, atomic creation, refusal of
 * group-readable or malformed files), and libp2p peer ids checked against js-libp2p
 * (@libp2p/crypto 5 + @libp2p/peer-id 5: peerIdFromPrivateKey(...).toString()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/enc.h"
#include "crypto/identity.h"
#include "crypto/keyfile.h"

static void unhex(uint8_t *out, size_t n, const char *h)
{
	assert_int_equal(hex_decode(out, n, h, strlen(h), false), 0);
}

static void t_rfc8032_test1(void **s)
{
	(void)s;
	uint8_t seed[32], pk[32], sig[64], want[64];
	unhex(seed, 32, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
	unhex(pk, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	unhex(want, 64,
	      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0"
	      "595bbe24655141438e7a100b");
	struct node_key k;
	node_key_from_seed(seed, &k);
	assert_memory_equal(k.pk, pk, 32);
	node_key_sign(&k, "", 0, sig);
	assert_memory_equal(sig, want, 64);
	assert_true(ed25519_verify(pk, "", 0, sig));
	/* any change to message, signature or key fails */
	assert_false(ed25519_verify(pk, "x", 1, sig));
	sig[0] ^= 1;
	assert_false(ed25519_verify(pk, "", 0, sig));
	sig[0] ^= 1;
	pk[31] ^= 0x40;
	assert_false(ed25519_verify(pk, "", 0, sig));
	node_key_wipe(&k);
	static const uint8_t zero[sizeof k];
	assert_memory_equal(&k, zero, sizeof k);
}

static void t_generate_sign(void **s)
{
	(void)s;
	struct node_key a, b;
	node_key_generate(&a);
	node_key_generate(&b);
	assert_memory_not_equal(a.pk, b.pk, 32);
	uint8_t sig[64];
	node_key_sign(&a, "hello", 5, sig);
	assert_true(ed25519_verify(a.pk, "hello", 5, sig));
	assert_false(ed25519_verify(b.pk, "hello", 5, sig));
	node_key_wipe(&a);
	node_key_wipe(&b);
}

static void t_peerid(void **s)
{
	(void)s;
	uint8_t pk[32], back[32], bytes[PEERID_ED25519_LEN];
	char id[PEERID_STR_MAX];
	unhex(pk, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	assert_int_equal(peerid_string_from_ed25519(pk, id, sizeof id), 52);
	assert_string_equal(id, "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV");
	/* the key of the libp2p specs' Ed25519 test vector (peer-ids.md) */
	unhex(pk, 32, "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
	assert_int_equal(peerid_string_from_ed25519(pk, id, sizeof id), 52);
	assert_string_equal(id, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
	peerid_bytes_from_ed25519(pk, bytes);
	static const uint8_t prefix[6] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
	assert_memory_equal(bytes, prefix, 6);
	assert_memory_equal(bytes + 6, pk, 32);
	assert_int_equal(peerid_string_to_ed25519(id, back), 0);
	assert_memory_equal(back, pk, 32);
	/* any key gives 12D3KooW… */
	struct node_key k;
	node_key_generate(&k);
	assert_int_equal(peerid_string_from_ed25519(k.pk, id, sizeof id), 52);
	assert_memory_equal(id, "12D3KooW", 8);
	node_key_wipe(&k);
	/* small buffers and malformed ids */
	assert_int_equal(peerid_string_from_ed25519(pk, id, 52), -1);
	assert_int_equal(peerid_string_to_ed25519("12D3KooW", back), -1);
	assert_int_equal(peerid_string_to_ed25519("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", back), -1);
	assert_int_equal(peerid_string_to_ed25519("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0", back), -1);
}

static char dir[64];

static int setup_dir(void **s)
{
	(void)s;
	snprintf(dir, sizeof dir, "/tmp/cg-identity-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **s)
{
	(void)s;
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	return rmdir(dir);
}

static int count_entries(void)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void write_file(const char *p, const char *content, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void t_keyfile(void **s)
{
	(void)s;
	char p[256];
	snprintf(p, sizeof p, "%s/node.key", dir);
	struct node_key k1, k2;
	cg_err e;
	/* missing without create */
	assert_int_equal(node_key_load(p, false, &k1, &e), -CG_E_NOT_FOUND);
	/* created 0600 even with a permissive umask, and no temp file left behind */
	mode_t old = umask(0);
	assert_int_equal(node_key_load(p, true, &k1, &e), 0);
	umask(old);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(count_entries(), 1);
	/* loads the same key back; create=true does not replace it */
	assert_int_equal(node_key_load(p, true, &k2, &e), 0);
	assert_memory_equal(&k1, &k2, sizeof k1);
	/* the file holds the seed; the key derived from it signs verifiably */
	uint8_t sig[64];
	node_key_sign(&k2, "m", 1, sig);
	assert_true(ed25519_verify(k1.pk, "m", 1, sig));
	/* group-readable: refused, and the message does not contain the path */
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(node_key_load(p, false, &k2, &e), -CG_E_FORBIDDEN);
	assert_int_equal(e.code, CG_E_FORBIDDEN);
	assert_null(strstr(e.msg, dir));
	assert_int_equal(chmod(p, 0604), 0);
	assert_int_equal(node_key_load(p, true, &k2, &e), -CG_E_FORBIDDEN);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(node_key_load(p, false, &k2, &e), 0);
	node_key_wipe(&k1);
	node_key_wipe(&k2);
}

static void t_keyfile_malformed(void **s)
{
	(void)s;
	char p[256];
	snprintf(p, sizeof p, "%s/bad.key", dir);
	struct node_key k;
	cg_err e;
	const char *bad[] = {"",
	                     "ed25519:",
	                     "ed25519:zz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
	                     "ed25519:9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6\n",
	                     "secp256k1:9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
	                     "ed25519:9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(p, bad[i], 0600);
		assert_int_equal(node_key_load(p, true, &k, &e), -CG_E_INVALID_ARGUMENT);
	}
	/* a valid file with the RFC 8032 seed gives the RFC 8032 key */
	write_file(p, "ed25519:9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n", 0600);
	assert_int_equal(node_key_load(p, false, &k, &e), 0);
	uint8_t pk[32];
	unhex(pk, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	assert_memory_equal(k.pk, pk, 32);
	node_key_wipe(&k);
	/* too large */
	char big[2048];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	write_file(p, big, 0600);
	assert_int_equal(node_key_load(p, false, &k, &e), -CG_E_INVALID_ARGUMENT);
	/* a FIFO is refused without blocking */
	char fifo[256];
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(node_key_load(fifo, false, &k, &e), -CG_E_FORBIDDEN);
	unlink(fifo);
	/* a directory is not a key file */
	char sub[256];
	snprintf(sub, sizeof sub, "%s/d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(node_key_load(sub, false, &k, &e), -CG_E_FORBIDDEN);
	rmdir(sub);
	unlink(p);
}

static void t_keyfile_create_conflict(void **s)
{
	(void)s;
	char p[256];
	snprintf(p, sizeof p, "%s/race.key", dir);
	cg_err e;
	assert_int_equal(keyfile_create(p, "test file", "one\n", 4, &e), 0);
	/* a second creator never replaces the first one's file */
	assert_int_equal(keyfile_create(p, "test file", "two\n", 4, &e), -CG_E_CONFLICT);
	char buf[16];
	size_t n;
	assert_int_equal(keyfile_read(p, "test file", buf, sizeof buf, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "one\n", 4);
	unlink(p);
	/* a missing directory is an I/O error, not a crash */
	snprintf(p, sizeof p, "%s/nope/x.key", dir);
	assert_int_equal(keyfile_create(p, "test file", "x", 1, &e), -CG_E_INTERNAL);
}

/* Several processes creating the same missing key file at once all end up with one and the same key. */
static void t_keyfile_race(void **s)
{
	(void)s;
	char p[256];
	snprintf(p, sizeof p, "%s/shared.key", dir);
	enum { N = 6 };
	int fds[N][2];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe2(fds[i], O_CLOEXEC), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct node_key k;
			cg_err e;
			int ok = node_key_load(p, true, &k, &e) == 0;
			uint8_t msg[33];
			msg[0] = (uint8_t)ok;
			memcpy(msg + 1, k.pk, 32);
			ssize_t w = write(fds[i][1], msg, sizeof msg);
			_exit(w == (ssize_t)sizeof msg ? 0 : 1);
		}
		close(fds[i][1]);
	}
	uint8_t first[32];
	for (int i = 0; i < N; i++) {
		uint8_t msg[33];
		assert_int_equal(read(fds[i][0], msg, sizeof msg), (ssize_t)sizeof msg);
		close(fds[i][0]);
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_int_equal(msg[0], 1);
		if (i == 0)
			memcpy(first, msg + 1, 32);
		else
			assert_memory_equal(first, msg + 1, 32);
	}
	struct node_key k;
	cg_err e;
	assert_int_equal(node_key_load(p, false, &k, &e), 0);
	assert_memory_equal(k.pk, first, 32);
	assert_int_equal(count_entries(), 1); /* no temp files left */
	node_key_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_rfc8032_test1),
	    cmocka_unit_test(t_generate_sign),
	    cmocka_unit_test(t_peerid),
	    cmocka_unit_test_setup_teardown(t_keyfile, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(t_keyfile_malformed, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(t_keyfile_create_conflict, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(t_keyfile_race, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
