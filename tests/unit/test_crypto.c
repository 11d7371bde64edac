/* Unit test of lib/crypto.c: known-answer vectors of every primitive (RFC
 * 5869 HKDF, RFC 7914 scrypt, RFC 4231 HMAC, the GCM specification's AES-256
 * cases), then what our use of them must guarantee: a changed byte, another
 * key or another id never opens; nonces never repeat, across fork() too; a
 * wrong passphrase opens nothing; a mistyped exported key is caught; the
 * contexts each thread keeps for keys give what fresh ones give. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "strbuf.h"
#include "usage.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

/* Decodes hex (no blanks) into a fresh buffer; *len gets its length. */
static unsigned char *hex(const char *s, size_t *len)
{
	size_t n = strlen(s) / 2, i;
	unsigned char *out = xmalloc(n + 1);

	for (i = 0; i < n; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
	if (len)
		*len = n;
	return out;
}

static int same_hex(const unsigned char *p, size_t len, const char *want)
{
	size_t n;
	unsigned char *w = hex(want, &n);
	int same = n == len && !memcmp(p, w, n);

	free(w);
	return same;
}

static void test_hkdf(void)
{
	static const struct {
		const char *ikm, *salt, *info, *okm;
	} v[] = {
		/* RFC 5869, A.1: basic. */
		{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
		  "f0f1f2f3f4f5f6f7f8f9",
		  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" },
		/* A.2: longer inputs and output. */
		{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
		  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
		  "404142434445464748494a4b4c4d4e4f",
		  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
		  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
		  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
		  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
		  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
		  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
		  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
		  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
		  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
		/* A.3: no salt, no info. */
		{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
		  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8" },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t ikmlen, saltlen, infolen, okmlen;
		unsigned char *ikm = hex(v[i].ikm, &ikmlen), *salt = hex(v[i].salt, &saltlen);
		unsigned char *info = hex(v[i].info, &infolen), *okm = hex(v[i].okm, &okmlen);
		unsigned char out[128];

		CHECK(crypto_hkdf(out, okmlen, ikm, ikmlen, salt, saltlen, info, infolen) == 0);
		CHECK(!memcmp(out, okm, okmlen));
		free(ikm);
		free(salt);
		free(info);
		free(okm);
	}
}

static void test_scrypt(void)
{
	/* RFC 7914, section 12 (the fourth vector needs 1 GiB: left out). */
	static const struct {
		const char *pass, *salt;
		struct scrypt_params p;
		const char *dk;
	} v[] = {
		{ "", "", { 16, 1, 1 },
		  "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
		  "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906" },
		{ "password", "NaCl", { 1024, 8, 16 },
		  "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
		  "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640" },
		{ "pleaseletmein", "SodiumChloride", { 16384, 8, 1 },
		  "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
		  "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887" },
	};
	struct scrypt_params bad = { 1000, 8, 1 }, huge = { 1 << 21, 8, 1 }, d;
	unsigned char out[64];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CHECK(crypto_scrypt(out, 64, v[i].pass, strlen(v[i].pass), v[i].salt,
				    strlen(v[i].salt), &v[i].p) == 0);
		CHECK(same_hex(out, 64, v[i].dk));
	}
	/* N not a power of two, and 2 GiB of memory: refused, not run. */
	fprintf(stderr, "(two scrypt refusals expected:)\n");
	CHECK(crypto_scrypt(out, 32, "x", 1, "y", 1, &bad) == -1);
	CHECK(crypto_scrypt(out, 32, "x", 1, "y", 1, &huge) == -1);

	unsetenv("BACKUP_INSECURE_TEST_KDF");
	crypto_scrypt_defaults(&d);
	CHECK(d.n == 1 << 16 && d.r == 8 && d.p == 1);
	setenv("BACKUP_INSECURE_TEST_KDF", "1", 1);
	crypto_scrypt_defaults(&d);
	CHECK(d.n == 1 << 10 && d.r == 8 && d.p == 1);
	unsetenv("BACKUP_INSECURE_TEST_KDF");
}

static void test_hmac(void)
{
	unsigned char key[20], out[CRYPTO_MAC_LEN];

	/* RFC 4231, test cases 1 and 2. */
	memset(key, 0x0b, sizeof(key));
	crypto_mac(out, key, 20, "Hi There", 8);
	CHECK(same_hex(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
	crypto_mac(out, (const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28);
	CHECK(same_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

/* The GCM specification (McGrew and Viega), test cases 13, 14 and 16: a
 * sealed buffer is the format byte 1, the nonce, C and T. */
static void test_gcm(void)
{
	static const struct {
		const char *k, *p, *a, *iv, *ct;
	} v[] = {
		{ "0000000000000000000000000000000000000000000000000000000000000000", "", "",
		  "000000000000000000000000", "530f8afbc74536b9a963b4f1c4cb738b" },
		{ "0000000000000000000000000000000000000000000000000000000000000000",
		  "00000000000000000000000000000000", "", "000000000000000000000000",
		  "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919" },
		{ "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
		  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
		  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
		  "feedfacedeadbeeffeedfacedeadbeefabaddad2", "cafebabefacedbaddecaf888",
		  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
		  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
		  "76fc6ece0f4e1768cddf8853bb2d551b" },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t plen, alen, ctlen;
		unsigned char *k = hex(v[i].k, NULL), *p = hex(v[i].p, &plen);
		unsigned char *a = hex(v[i].a, &alen), *iv = hex(v[i].iv, NULL);
		unsigned char *ct = hex(v[i].ct, &ctlen);
		struct strbuf sealed = STRBUF_INIT, plain = STRBUF_INIT;

		CHECK(crypto_seal_nonce(&sealed, k, iv, a, alen, p, plen) == 0);
		CHECK(sealed.len == 1 + 12 + ctlen);
		CHECK(sealed.buf[0] == 1 && !memcmp(sealed.buf + 1, iv, 12));
		CHECK(!memcmp(sealed.buf + 13, ct, ctlen));
		CHECK(crypto_open(&plain, k, a, alen, sealed.buf, sealed.len) == 0);
		CHECK(plain.len == plen && !memcmp(plain.buf, p, plen));
		strbuf_release(&sealed);
		strbuf_release(&plain);
		free(k);
		free(p);
		free(a);
		free(iv);
		free(ct);
	}
}

/* Every single-bit change of a sealed buffer, another key, another id, a
 * cut: none opens, and out keeps what it held. */
static void test_tamper(void)
{
	struct crypto_keys *k, *other;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, out = STRBUF_INIT;
	char plain[1000];
	size_t i;
	int bit, opened = 0;

	CHECK(crypto_keys_new(&k) == 0);
	CHECK(crypto_keys_new(&other) == 0);
	for (i = 0; i < sizeof(plain); i++)
		plain[i] = (char)(i * 7);
	CHECK(crypto_seal(&a, k->sub[CRYPTO_BLOB], "id-a", 4, plain, sizeof(plain)) == 0);
	CHECK(crypto_seal(&b, k->sub[CRYPTO_BLOB], "id-b", 4, plain, sizeof(plain)) == 0);
	CHECK(a.len == sizeof(plain) + CRYPTO_SEAL_OVERHEAD);
	/* Random nonces: the same plaintext seals differently. */
	CHECK(a.len == b.len && memcmp(a.buf, b.buf, a.len));

	strbuf_addstr(&out, "kept");
	for (i = 0; i < a.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			a.buf[i] ^= 1 << bit;
			opened += crypto_open(&out, k->sub[CRYPTO_BLOB], "id-a", 4, a.buf, a.len) != ERR_CORRUPT;
			a.buf[i] ^= 1 << bit;
		}
	}
	CHECK(opened == 0);
	CHECK(out.len == 4 && !strcmp(out.buf, "kept"));
	/* Swapped: a valid ciphertext under another id. */
	CHECK(crypto_open(&out, k->sub[CRYPTO_BLOB], "id-b", 4, a.buf, a.len) == ERR_CORRUPT);
	CHECK(crypto_open(&out, k->sub[CRYPTO_BLOB], "id-a", 4, b.buf, b.len) == ERR_CORRUPT);
	CHECK(crypto_open(&out, k->sub[CRYPTO_BLOB], NULL, 0, a.buf, a.len) == ERR_CORRUPT);
	/* Another key, another subkey of the same master. */
	CHECK(crypto_open(&out, other->sub[CRYPTO_BLOB], "id-a", 4, a.buf, a.len) == ERR_CORRUPT);
	CHECK(crypto_open(&out, k->sub[CRYPTO_COMMIT], "id-a", 4, a.buf, a.len) == ERR_CORRUPT);
	/* Cut short, at every length. */
	for (i = 0; i < a.len; i++)
		opened += crypto_open(&out, k->sub[CRYPTO_BLOB], "id-a", 4, a.buf, i) != ERR_CORRUPT;
	CHECK(opened == 0);
	CHECK(out.len == 4);
	/* And the untouched ones open. */
	CHECK(crypto_open(&out, k->sub[CRYPTO_BLOB], "id-a", 4, a.buf, a.len) == 0);
	CHECK(out.len == 4 + sizeof(plain) && !memcmp(out.buf + 4, plain, sizeof(plain)));
	strbuf_release(&a);
	strbuf_release(&b);
	strbuf_release(&out);
	crypto_keys_free(k);
	crypto_keys_free(other);
}

/* crypto_peek() gives exactly the first bytes crypto_open() gives, at every
 * length, and refuses a buffer too short for what it asks. */
static void test_peek(void)
{
	unsigned char key[CRYPTO_KEY_LEN] = { 3 }, got[300];
	struct strbuf sealed = STRBUF_INIT, plain = STRBUF_INIT;
	char text[300];
	size_t i, n;
	int same = 1;

	for (i = 0; i < sizeof(text); i++)
		text[i] = (char)(i * 13 + 1);
	for (n = 0; n <= sizeof(text); n += 37) {
		strbuf_reset(&sealed);
		strbuf_reset(&plain);
		CHECK(crypto_seal(&sealed, key, "id", 2, text, n) == 0);
		CHECK(crypto_open(&plain, key, "id", 2, sealed.buf, sealed.len) == 0);
		for (i = 0; i <= n; i++) {
			CHECK(crypto_peek(got, i, key, sealed.buf, sealed.len) == 0);
			same &= !memcmp(got, plain.buf, i);
		}
		CHECK(crypto_peek(got, n + 1, key, sealed.buf, sealed.len) == ERR_CORRUPT);
	}
	CHECK(same);
	CHECK(crypto_peek(got, 0, key, sealed.buf, CRYPTO_SEAL_OVERHEAD - 1) == ERR_CORRUPT);
	strbuf_release(&sealed);
	strbuf_release(&plain);
}

/* A child of fork() must not deal the nonces its parent deals next. */
static void test_fork_nonces(void)
{
	unsigned char key[CRYPTO_KEY_LEN] = { 9 }, theirs[CRYPTO_NONCE_LEN];
	struct strbuf a = STRBUF_INIT;
	int fd[2], st;
	pid_t pid;

	CHECK(crypto_seal(&a, key, NULL, 0, "x", 1) == 0);
	CHECK(pipe(fd) == 0);
	pid = fork();
	if (pid == 0) {
		struct strbuf c = STRBUF_INIT;

		crypto_seal(&c, key, NULL, 0, "x", 1);
		_exit(write(fd[1], c.buf + 1, CRYPTO_NONCE_LEN) != CRYPTO_NONCE_LEN);
	}
	close(fd[1]);
	CHECK(read(fd[0], theirs, CRYPTO_NONCE_LEN) == CRYPTO_NONCE_LEN);
	close(fd[0]);
	waitpid(pid, &st, 0);
	strbuf_reset(&a);
	CHECK(crypto_seal(&a, key, NULL, 0, "x", 1) == 0);
	CHECK(memcmp(a.buf + 1, theirs, CRYPTO_NONCE_LEN));
	strbuf_release(&a);
}

static void test_subkeys(void)
{
	unsigned char master[CRYPTO_KEY_LEN], want[CRYPTO_KEY_LEN], mac1[32], mac2[32];
	static const char *const label[] = { "backup blob v1", "backup dedup v1", "backup name v1",
					     "backup commit v1", "backup name cipher v1" };
	struct crypto_keys *k, *k2;
	int i, j;

	for (i = 0; i < CRYPTO_KEY_LEN; i++)
		master[i] = (unsigned char)i;
	CHECK(crypto_keys_from_master(&k, master) == 0);
	CHECK(!memcmp(k->master, master, CRYPTO_KEY_LEN));
	for (i = 0; i < CRYPTO_NUSES; i++) {
		CHECK(crypto_hkdf(want, 32, master, 32, NULL, 0, label[i], strlen(label[i])) == 0);
		CHECK(!memcmp(k->sub[i], want, 32));
		for (j = 0; j < i; j++)
			CHECK(memcmp(k->sub[i], k->sub[j], 32));
	}
	/* Dedup keys: the same bytes give the same key under one master, and
	 * another under another; never the plain SHA-256. */
	crypto_mac(mac1, k->sub[CRYPTO_DEDUP], 32, "chunk", 5);
	CHECK(crypto_keys_new(&k2) == 0);
	crypto_mac(mac2, k2->sub[CRYPTO_DEDUP], 32, "chunk", 5);
	CHECK(memcmp(mac1, mac2, 32));
	CHECK(memcmp(k->master, k2->master, 32));
	crypto_mac(mac2, k->sub[CRYPTO_DEDUP], 32, "chunk", 5);
	CHECK(!memcmp(mac1, mac2, 32));
	crypto_keys_free(k);
	crypto_keys_free(k2);
}

static void test_wrap(void)
{
	struct scrypt_params fast = { 16, 1, 1 }, test = { 1024, 8, 1 };
	struct strbuf w = STRBUF_INIT, w2 = STRBUF_INIT;
	struct crypto_key_info info;
	struct crypto_keys *k, *got;
	size_t i;
	int bad = 0;

	CHECK(crypto_keys_new(&k) == 0);
	CHECK(crypto_key_wrap(&w, k, 1765119845, "correct horse", 13, &test) == 0);
	CHECK(!strncmp(w.buf, "backup-key 1\nid ", 16));
	CHECK(strstr(w.buf, "\ncreated 2025-12-07T15:04:05Z\nkdf scrypt 1024 8 1\nsalt "));
	CHECK(crypto_key_parse(&info, w.buf, w.len) == 0);
	CHECK(strlen(info.id) == 16 && info.created == 1765119845);
	CHECK(info.kdf.n == 1024 && info.kdf.r == 8 && info.kdf.p == 1);
	CHECK(!memcmp(info.check, k->check, CRYPTO_CHECK_LEN));

	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "correct horse", 13) == 0);
	CHECK(got && !memcmp(got->master, k->master, 32) && !memcmp(got->sub, k->sub, sizeof(k->sub)));
	crypto_keys_free(got);
	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "correct horsf", 13) == 1 && !got);
	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "correct hors", 12) == 1 && !got);
	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "", 0) == 1 && !got);

	/* Two wraps of one key: other id, salt and ciphertext. */
	CHECK(crypto_key_wrap(&w2, k, 1765119845, "correct horse", 13, &test) == 0);
	CHECK(memcmp(w.buf + 16, w2.buf + 16, 16));
	strbuf_release(&w2);

	/* Every byte changed (one bit of it) in a fast-KDF wrap: never opens. */
	strbuf_reset(&w);
	CHECK(crypto_key_wrap(&w, k, 1765119845, "pw", 2, &fast) == 0);
	for (i = 0; i < w.len; i++) {
		int ret;

		w.buf[i] ^= 1;
		ret = crypto_key_unwrap(&got, w.buf, w.len, "pw", 2);
		bad += !(ret == 1 || ret == ERR_CORRUPT) || got;
		crypto_keys_free(got);
		w.buf[i] ^= 1;
	}
	CHECK(bad == 0);
	for (i = 0; i < w.len; i++)
		bad += crypto_key_parse(&info, w.buf, i) != ERR_CORRUPT;
	CHECK(bad == 0);
	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "pw", 2) == 0);
	crypto_keys_free(got);
	/* Parameters a hostile file could ask for: refused before scrypt runs. */
	strbuf_reset(&w);
	strbuf_addstr(&w, "backup-key 1\nid 0123456789abcdef\ncreated 2025-12-07T15:04:05Z\n"
		      "kdf scrypt 4294967296 8 1\nsalt ");
	for (i = 0; i < 64; i++)
		strbuf_addch(&w, '0');
	strbuf_addstr(&w, "\ncheck ");
	for (i = 0; i < 32; i++)
		strbuf_addch(&w, '0');
	strbuf_addstr(&w, "\nsealed ");
	for (i = 0; i < 2 * 61; i++)
		strbuf_addch(&w, '0');
	strbuf_addch(&w, '\n');
	CHECK(crypto_key_parse(&info, w.buf, w.len) == ERR_CORRUPT);
	CHECK(crypto_key_unwrap(&got, w.buf, w.len, "pw", 2) == ERR_CORRUPT);
	strbuf_release(&w);
	crypto_keys_free(k);
}

static void test_export(void)
{
	struct strbuf e = STRBUF_INIT, s = STRBUF_INIT;
	struct crypto_keys *k, *got;
	char *p;
	size_t i;

	CHECK(crypto_keys_new(&k) == 0);
	crypto_key_export(&e, k);
	CHECK(!strncmp(e.buf, "backup-master-key 1\ncheck ", 26));
	CHECK(crypto_key_import(&got, e.buf, e.len) == 0);
	CHECK(got && !memcmp(got->master, k->master, 32));
	crypto_keys_free(got);
	/* Typed back without the blanks between the groups. */
	p = strstr(e.buf, "\nkey ") + 5;
	for (i = 0; i < e.len; i++)
		if (e.buf[i] != ' ' || e.buf + i < p)
			strbuf_addch(&s, e.buf[i]);
	CHECK(crypto_key_import(&got, s.buf, s.len) == 0);
	crypto_keys_free(got);
	/* One digit mistyped in the key or in the check: refused. */
	p = strstr(e.buf, "\nkey ") + 10;
	*p = *p == '0' ? '1' : '0';
	CHECK(crypto_key_import(&got, e.buf, e.len) == ERR_CORRUPT && !got);
	*p = *p == '0' ? '1' : '0';
	p = e.buf + 27;
	*p = *p == '0' ? '1' : '0';
	CHECK(crypto_key_import(&got, e.buf, e.len) == ERR_CORRUPT && !got);
	CHECK(crypto_key_import(&got, "backup-master-key 1\n", 20) == ERR_CORRUPT);
	CHECK(crypto_key_import(&got, "", 0) == ERR_CORRUPT);
	strbuf_release(&e);
	strbuf_release(&s);
	crypto_keys_free(k);
}

/* 1 when crypto_keys_mac() and crypto_keys_ctr() of k give, for every use
 * and a few lengths, what crypto_mac() and crypto_ctr() give with k's
 * subkeys: twice, so that kept contexts are checked as well as new ones. */
static int keyed_same(const struct crypto_keys *k)
{
	static const size_t lens[] = { 0, 1, 55, 64, 255, 3000 };
	unsigned char data[3000], iv[16], a[3000], b[3000];
	size_t i, l;
	int use, round, same = 1;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (round = 0; round < 2; round++)
		for (use = 0; use < CRYPTO_NUSES; use++)
			for (l = 0; l < sizeof(lens) / sizeof(*lens); l++) {
				crypto_keys_mac(a, k, use, data, lens[l]);
				crypto_mac(b, k->sub[use], CRYPTO_KEY_LEN, data, lens[l]);
				same &= !memcmp(a, b, CRYPTO_MAC_LEN);
				memset(iv, (int)(l + 16 * round), sizeof(iv));
				same &= crypto_keys_ctr(a, k, use, iv, data, lens[l]) == 0;
				same &= crypto_ctr(b, k->sub[use], iv, data, lens[l]) == 0;
				same &= !memcmp(a, b, lens[l]);
			}
	return same;
}

static void *keyed_thread(void *k)
{
	return keyed_same(k) ? k : NULL;
}

static void test_thread_contexts(void)
{
	unsigned char master[CRYPTO_KEY_LEN] = { 1 };
	struct crypto_keys *k1, *k2, *k3;
	pthread_t t[3];
	void *ret;
	int i;

	CHECK(crypto_keys_from_master(&k1, master) == 0);
	CHECK(crypto_keys_new(&k2) == 0);
	/* Two keys in turn on one thread: each gets its own subkeys. */
	CHECK(keyed_same(k1));
	CHECK(keyed_same(k2));
	CHECK(keyed_same(k1));
	/* Keys freed and others made, perhaps at the same address: never
	 * the contexts of the keys before. */
	crypto_keys_free(k1);
	master[0] = 2;
	CHECK(crypto_keys_from_master(&k3, master) == 0);
	CHECK(keyed_same(k3));
	/* Threads at once, each with its own contexts, freed as it exits. */
	for (i = 0; i < 3; i++)
		CHECK(pthread_create(&t[i], NULL, keyed_thread, i ? k2 : k3) == 0);
	for (i = 0; i < 3; i++) {
		CHECK(pthread_join(t[i], &ret) == 0);
		CHECK(ret == (i ? (void *)k2 : (void *)k3));
	}
	crypto_keys_free(k2);
	crypto_keys_free(k3);
}

int main(void)
{
	/* As main() does: RFC 7914's third vector (16 MiB) is then computed
	 * in memory marked for huge pages. */
	crypto_init();
	test_hkdf();
	test_scrypt();
	test_hmac();
	test_gcm();
	test_tamper();
	test_peek();
	test_fork_nonces();
	test_subkeys();
	test_thread_contexts();
	test_wrap();
	test_export();
	if (failed)
		return 1;
	printf("test_crypto: ok\n");
	return 0;
}
