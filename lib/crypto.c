#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "hash.h"
#include "strbuf.h"
#include "usage.h"

/* The first byte of a sealed buffer: its cipher, so that another one can
 * be added one day without guessing. */
#define SEAL_AES256GCM 1

/* Labels of the HKDF subkeys: never change one, it would lose the data. */
static const char *const use_label[CRYPTO_NUSES] = {
	[CRYPTO_BLOB] = "backup blob v1",
	[CRYPTO_DEDUP] = "backup dedup v1",
	[CRYPTO_NAME] = "backup name v1",
	[CRYPTO_COMMIT] = "backup commit v1",
	[CRYPTO_NAME_CIPHER] = "backup name cipher v1",
};
static const char check_label[] = "backup check v1";

/* scrypt above this much memory is refused: a hostile key file must not
 * make every opening of the repository exhaust the machine. */
#define SCRYPT_MAX_MEM ((uint64_t)1 << 30)

static EVP_CIPHER *aes_gcm, *aes_ctr;
static EVP_MAC *hmac;
static EVP_KDF *hkdf, *scrypt;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Fetching once saves the per-call algorithm lookup. */
static void fetch(void)
{
	aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	aes_ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	scrypt = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!aes_gcm || !aes_ctr || !hmac || !hkdf || !scrypt)
		die("libcrypto offers no AES-256-GCM, AES-256-CTR, HMAC, HKDF or SCRYPT");
}

/*
 * libcrypto's allocations, with one difference: a block of HUGE or more
 * (scrypt's 64 MiB, N * r * 128 bytes, is the only one) is marked for
 * transparent huge pages. scrypt reads it at random, so with 4 KiB pages
 * its time goes to TLB misses and to 16,384 page faults: on this project's
 * machines opening a key took 0.27 s user + 0.12 s system, and takes
 * 0.16 s + 0.01 s with huge pages. What is computed does not change.
 */
#define HUGE ((size_t)8 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void *crypto_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	(void)file;
	(void)line;
	if (p && n >= HUGE) {
		uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
		uintptr_t e = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);

		/* A hint: where the kernel offers none, nothing changes. */
		if (e > a)
			madvise((void *)a, e - a, MADV_HUGEPAGE);
	}
	return p;
}

static void *crypto_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return realloc(p, n);
}

static void crypto_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

void crypto_init(void)
{
	/* Refused once libcrypto has allocated: then it keeps its own. */
	CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free);
}

void crypto_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

int crypto_random(void *buf, size_t len)
{
	if (RAND_priv_bytes(buf, (int)len) != 1)
		return error("cannot draw random bytes from libcrypto");
	return 0;
}

int crypto_hkdf(unsigned char *out, size_t outlen, const void *key, size_t keylen,
		const void *salt, size_t saltlen, const void *info, size_t infolen)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *c;
	int ok;

	pthread_once(&fetch_once, fetch);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
	/* An absent salt is HashLen zeros (RFC 5869, 2.2), which is what
	 * libcrypto does without the parameter. */
	if (saltlen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	if (infolen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	c = EVP_KDF_CTX_new(hkdf);
	ok = c && EVP_KDF_derive(c, out, outlen, params) == 1;
	EVP_KDF_CTX_free(c);
	return ok ? 0 : error("HKDF failed in libcrypto");
}

/* Tells keys apart in the threads' contexts: an address may be reused. */
static uint64_t keys_serial;

static int derive(struct crypto_keys *k)
{
	int i;

	pthread_once(&fetch_once, fetch);
	k->serial = __atomic_add_fetch(&keys_serial, 1, __ATOMIC_RELAXED);
	for (i = 0; i < CRYPTO_NUSES; i++)
		if (crypto_hkdf(k->sub[i], CRYPTO_KEY_LEN, k->master, CRYPTO_KEY_LEN, NULL, 0,
				use_label[i], strlen(use_label[i])) < 0)
			return -1;
	return crypto_hkdf(k->check, CRYPTO_CHECK_LEN, k->master, CRYPTO_KEY_LEN, NULL, 0,
			   check_label, strlen(check_label));
}

/*
 * Each thread keeps libcrypto contexts keyed with the subkeys of the keys
 * it used last, made on first use: a sealed name is an HMAC and an
 * AES-CTR of a few dozen bytes, and making their contexts anew (the HMAC
 * pads, the AES key schedule, a dozen allocations) cost more than the work
 * itself. The contexts are freed, and libcrypto wipes the key material in
 * them, when the thread exits, when it uses other keys, and when it frees
 * these keys (crypto_keys_free()).
 */
struct thread_ctx {
	uint64_t serial;		/* of the keys, 0 for none yet */
	EVP_MAC_CTX *mac[CRYPTO_NUSES];
	EVP_CIPHER_CTX *ctr[CRYPTO_NUSES];
};
static __thread struct thread_ctx *tctx;
static pthread_key_t tctx_key;
static pthread_once_t tctx_once = PTHREAD_ONCE_INIT;

static void tctx_clear(struct thread_ctx *t)
{
	int i;

	for (i = 0; i < CRYPTO_NUSES; i++) {
		EVP_MAC_CTX_free(t->mac[i]);
		EVP_CIPHER_CTX_free(t->ctr[i]);
		t->mac[i] = NULL;
		t->ctr[i] = NULL;
	}
	t->serial = 0;
}

/* At the exit of a thread that used keys. */
static void tctx_destroy(void *p)
{
	tctx_clear(p);
	free(p);
	tctx = NULL;
}

static void tctx_key_create(void)
{
	if (pthread_key_create(&tctx_key, tctx_destroy))
		die("cannot create a thread-specific key");
}

static struct thread_ctx *thread_ctx(const struct crypto_keys *k)
{
	if (!tctx) {
		pthread_once(&tctx_once, tctx_key_create);
		tctx = xcalloc(1, sizeof(*tctx));
		if (pthread_setspecific(tctx_key, tctx))
			die("cannot set a thread-specific value");
	}
	if (tctx->serial != k->serial) {
		tctx_clear(tctx);
		tctx->serial = k->serial;
	}
	return tctx;
}

int crypto_keys_from_master(struct crypto_keys **out, const unsigned char master[CRYPTO_KEY_LEN])
{
	struct crypto_keys *k = xcalloc(1, sizeof(*k));

	*out = NULL;
	memcpy(k->master, master, CRYPTO_KEY_LEN);
	if (derive(k) < 0) {
		crypto_keys_free(k);
		return -1;
	}
	*out = k;
	return 0;
}

int crypto_keys_new(struct crypto_keys **out)
{
	unsigned char master[CRYPTO_KEY_LEN];
	int ret;

	*out = NULL;
	if (crypto_random(master, sizeof(master)) < 0)
		return -1;
	ret = crypto_keys_from_master(out, master);
	crypto_wipe(master, sizeof(master));
	return ret;
}

void crypto_keys_free(struct crypto_keys *k)
{
	if (!k)
		return;
	if (tctx && tctx->serial == k->serial)
		tctx_clear(tctx);
	crypto_wipe(k, sizeof(*k));
	free(k);
}

void crypto_mac(unsigned char out[CRYPTO_MAC_LEN], const unsigned char *key, size_t keylen,
		const void *data, size_t len)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c;
	size_t outlen;

	pthread_once(&fetch_once, fetch);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	c = EVP_MAC_CTX_new(hmac);
	if (!c || !EVP_MAC_init(c, key, keylen, params) || !EVP_MAC_update(c, data, len) ||
	    !EVP_MAC_final(c, out, &outlen, CRYPTO_MAC_LEN) || outlen != CRYPTO_MAC_LEN)
		die("HMAC-SHA-256 failed in libcrypto");
	EVP_MAC_CTX_free(c);
}

void crypto_keys_mac(unsigned char out[CRYPTO_MAC_LEN], const struct crypto_keys *k, enum crypto_use use,
		     const void *data, size_t len)
{
	struct thread_ctx *t = thread_ctx(k);
	EVP_MAC_CTX *c = t->mac[use];
	size_t outlen;
	int ok;

	if (!c) {
		OSSL_PARAM params[2];

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		c = t->mac[use] = EVP_MAC_CTX_new(hmac);
		ok = c && EVP_MAC_init(c, k->sub[use], CRYPTO_KEY_LEN, params);
	} else {
		/* No key: the same one again, from the pads kept. */
		ok = EVP_MAC_init(c, NULL, 0, NULL);
	}
	if (!ok || !EVP_MAC_update(c, data, len) || !EVP_MAC_final(c, out, &outlen, CRYPTO_MAC_LEN) ||
	    outlen != CRYPTO_MAC_LEN)
		die("HMAC-SHA-256 failed in libcrypto");
}

int crypto_keys_ctr(unsigned char *out, const struct crypto_keys *k, enum crypto_use use,
		    const unsigned char iv[16], const void *in, size_t len)
{
	struct thread_ctx *t = thread_ctx(k);
	EVP_CIPHER_CTX *c = t->ctr[use];
	int outl, ok;

	if (len > (1 << 30))
		return error("AES-256-CTR of more than 1 GiB at once");
	if (!c) {
		c = t->ctr[use] = EVP_CIPHER_CTX_new();
		if (!c)
			die("out of memory");
		ok = EVP_EncryptInit_ex2(c, aes_ctr, k->sub[use], iv, NULL);
	} else {
		/* The key schedule kept: only the counter block is new. */
		ok = EVP_EncryptInit_ex2(c, NULL, NULL, iv, NULL);
	}
	ok = ok && (!len || EVP_EncryptUpdate(c, out, &outl, in, (int)len));
	return ok ? 0 : error("AES-256-CTR failed in libcrypto");
}

/* EVP_*Update() takes an int length: long buffers go in steps. */
#define STEP (1 << 30)

int crypto_seal_nonce(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		      const unsigned char nonce[CRYPTO_NONCE_LEN],
		      const void *id, size_t idlen, const void *plain, size_t len)
{
	size_t start = out->len, done = 0;
	EVP_CIPHER_CTX *c;
	unsigned char *p;
	int n, ok;

	pthread_once(&fetch_once, fetch);
	strbuf_grow(out, CRYPTO_SEAL_OVERHEAD + len);
	p = (unsigned char *)out->buf + start;
	p[0] = SEAL_AES256GCM;
	memcpy(p + 1, nonce, CRYPTO_NONCE_LEN);
	p += 1 + CRYPTO_NONCE_LEN;
	c = EVP_CIPHER_CTX_new();
	ok = c && EVP_EncryptInit_ex2(c, aes_gcm, key, nonce, NULL) &&
	     (!idlen || EVP_EncryptUpdate(c, NULL, &n, id, (int)idlen));
	while (ok && done < len) {
		size_t step = len - done < STEP ? len - done : STEP;

		ok = EVP_EncryptUpdate(c, p + done, &n, (const unsigned char *)plain + done, (int)step);
		done += step;
	}
	ok = ok && EVP_EncryptFinal_ex(c, p + len, &n) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CRYPTO_TAG_LEN, p + len);
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		strbuf_setlen(out, start);
		return error("AES-256-GCM failed in libcrypto");
	}
	strbuf_setlen(out, start + CRYPTO_SEAL_OVERHEAD + len);
	return 0;
}

/*
 * Nonces are drawn from the CSPRNG 256 at a time: one RAND_bytes() call
 * costs about as much as sealing 4 KiB. The pool is per thread and emptied
 * in a child process (only the thread that forked lives on there), so that
 * a fork never deals the same nonces twice.
 */
#define NONCE_POOL 256
static __thread unsigned char nonce_pool[NONCE_POOL * CRYPTO_NONCE_LEN];
static __thread unsigned nonce_left;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void empty_pool(void)
{
	nonce_left = 0;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, empty_pool);
}

int crypto_seal(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		const void *id, size_t idlen, const void *plain, size_t len)
{
	unsigned char *nonce;
	int ret;

	if (!nonce_left) {
		pthread_once(&atfork_once, register_atfork);
		/* Not RAND_priv_bytes(): a nonce is public. */
		if (RAND_bytes(nonce_pool, sizeof(nonce_pool)) != 1)
			return error("cannot draw random bytes from libcrypto");
		nonce_left = NONCE_POOL;
	}
	nonce = nonce_pool + --nonce_left * CRYPTO_NONCE_LEN;
	ret = crypto_seal_nonce(out, key, nonce, id, idlen, plain, len);
	/* Used once, never again. */
	memset(nonce, 0, CRYPTO_NONCE_LEN);
	return ret;
}

int crypto_open(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		const void *id, size_t idlen, const void *sealed, size_t len)
{
	const unsigned char *s = sealed, *nonce = s + 1, *ct = nonce + CRYPTO_NONCE_LEN;
	size_t start = out->len, ctlen, done = 0;
	unsigned char tag[CRYPTO_TAG_LEN];
	EVP_CIPHER_CTX *c;
	unsigned char *p;
	int n, ok;

	if (len < CRYPTO_SEAL_OVERHEAD || s[0] != SEAL_AES256GCM)
		return ERR_CORRUPT;
	pthread_once(&fetch_once, fetch);
	ctlen = len - CRYPTO_SEAL_OVERHEAD;
	memcpy(tag, ct + ctlen, CRYPTO_TAG_LEN);
	strbuf_grow(out, ctlen);
	p = (unsigned char *)out->buf + start;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		die("out of memory");
	ok = EVP_DecryptInit_ex2(c, aes_gcm, key, nonce, NULL) &&
	     (!idlen || EVP_DecryptUpdate(c, NULL, &n, id, (int)idlen));
	while (ok && done < ctlen) {
		size_t step = ctlen - done < STEP ? ctlen - done : STEP;

		ok = EVP_DecryptUpdate(c, p + done, &n, ct + done, (int)step);
		done += step;
	}
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CRYPTO_TAG_LEN, tag) &&
	     EVP_DecryptFinal_ex(c, p + ctlen, &n) > 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		/* Unauthenticated plaintext is never handed out. */
		crypto_wipe(p, ctlen);
		strbuf_setlen(out, start);
		return ERR_CORRUPT;
	}
	strbuf_setlen(out, start + ctlen);
	return 0;
}

int crypto_ctr(unsigned char *out, const unsigned char key[CRYPTO_KEY_LEN], const unsigned char iv[16],
	       const void *in, size_t len)
{
	EVP_CIPHER_CTX *c;
	int outl, ok;

	if (len > STEP)
		return error("AES-256-CTR of more than 1 GiB at once");
	pthread_once(&fetch_once, fetch);
	c = EVP_CIPHER_CTX_new();
	if (!c)
		die("out of memory");
	ok = EVP_EncryptInit_ex2(c, aes_ctr, key, iv, NULL) &&
	     (!len || EVP_EncryptUpdate(c, out, &outl, in, (int)len));
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : error("AES-256-CTR failed in libcrypto");
}

int crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

int crypto_peek(unsigned char *out, size_t n, const unsigned char key[CRYPTO_KEY_LEN],
		const void *sealed, size_t len)
{
	const unsigned char *s = sealed;
	unsigned char iv[16];

	if (len < CRYPTO_SEAL_OVERHEAD || s[0] != SEAL_AES256GCM || n > len - CRYPTO_SEAL_OVERHEAD || n > 4096)
		return ERR_CORRUPT;
	/*
	 * GCM with a 96-bit nonce encrypts the first block of plaintext with
	 * the counter block nonce || 00000002 (SP 800-38D, 7.1: J0 is
	 * nonce || 00000001, and the text starts at inc32(J0)): CTR mode from
	 * there gives the same bytes.
	 */
	memcpy(iv, s + 1, CRYPTO_NONCE_LEN);
	iv[12] = iv[13] = iv[14] = 0;
	iv[15] = 2;
	return crypto_ctr(out, key, iv, s + 1 + CRYPTO_NONCE_LEN, n);
}

/* N a power of two above 1, r and p at least 1, r * p < 2^30 (RFC 7914),
 * and at most SCRYPT_MAX_MEM of memory (128 * r * N bytes). */
static int scrypt_params_ok(const struct scrypt_params *sp)
{
	return sp->n >= 2 && !(sp->n & (sp->n - 1)) && sp->r && sp->p &&
	       (uint64_t)sp->r * sp->p < (1u << 30) && sp->n <= SCRYPT_MAX_MEM / 128 / sp->r;
}

int crypto_scrypt(unsigned char *out, size_t outlen, const void *pass, size_t passlen,
		  const void *salt, size_t saltlen, const struct scrypt_params *sp)
{
	OSSL_PARAM params[7], *p = params;
	uint64_t n = sp->n, maxmem = 2 * SCRYPT_MAX_MEM;
	uint32_t r = sp->r, par = sp->p;
	EVP_KDF_CTX *c;
	int ok;

	if (!scrypt_params_ok(sp))
		return error("scrypt parameters N=%llu r=%u p=%u refused: N must be a power of two and the memory at most 1 GiB",
			     (unsigned long long)n, r, par);
	pthread_once(&fetch_once, fetch);
	/* libcrypto wants a pointer even for an empty passphrase or salt. */
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						 (void *)(passlen ? pass : ""), passlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 (void *)(saltlen ? salt : ""), saltlen);
	*p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
	*p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*p = OSSL_PARAM_construct_end();
	c = EVP_KDF_CTX_new(scrypt);
	ok = c && EVP_KDF_derive(c, out, outlen, params) == 1;
	EVP_KDF_CTX_free(c);
	return ok ? 0 : error("scrypt failed in libcrypto (N=%llu r=%u p=%u)",
			      (unsigned long long)n, r, par);
}

void crypto_scrypt_defaults(struct scrypt_params *out)
{
	const char *test = getenv("BACKUP_INSECURE_TEST_KDF");

	out->n = test && !strcmp(test, "1") ? 1 << 10 : 1 << 16;
	out->r = 8;
	out->p = 1;
}

/* Wrapped keys. */

#define SALT_LEN 32

static int unhex(unsigned char *out, size_t outlen, const char *s, size_t len)
{
	size_t i;

	if (len != 2 * outlen)
		return -1;
	for (i = 0; i < len; i++) {
		int c = s[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i & 1)
			out[i / 2] |= v;
		else
			out[i / 2] = v << 4;
	}
	return 0;
}

static void add_hex(struct strbuf *sb, const unsigned char *p, size_t len)
{
	strbuf_grow(sb, 2 * len);
	hex_encode(sb->buf + sb->len, p, len);
	strbuf_setlen(sb, sb->len + 2 * len);
}

/*
 * Takes the next line of [*s, end) if it starts with "name "; its value
 * (without the newline) in *val and *vlen. Lines end with '\n', the last
 * one too.
 */
static int take_line(const char **s, const char *end, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);
	const char *nl = memchr(*s, '\n', end - *s);

	if (!nl || (size_t)(nl - *s) <= n || memcmp(*s, name, n) || (*s)[n] != ' ')
		return -1;
	*val = *s + n + 1;
	*vlen = nl - *val;
	*s = nl + 1;
	return 0;
}

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len || len > 20 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Parses the kdf line's value, "scrypt N r p". */
static int parse_kdf(struct scrypt_params *out, const char *s, size_t len)
{
	const char *end = s + len, *f[3];
	size_t flen[3];
	uint64_t v[3];
	int i;

	if (len < 7 || memcmp(s, "scrypt ", 7))
		return -1;
	s += 7;
	for (i = 0; i < 3; i++) {
		const char *sp = memchr(s, ' ', end - s);

		f[i] = s;
		flen[i] = (i < 2 ? (sp ? sp : end) : end) - s;
		if (i < 2 && !sp)
			return -1;
		if (parse_u64(f[i], flen[i], i ? UINT32_MAX : UINT64_MAX, &v[i]) < 0)
			return -1;
		s = f[i] + flen[i] + 1;
	}
	out->n = v[0];
	out->r = (uint32_t)v[1];
	out->p = (uint32_t)v[2];
	return scrypt_params_ok(out) ? 0 : -1;
}

/* The parsed fields, and where the sealed value and the associated data are. */
struct wrapped {
	struct crypto_key_info info;
	unsigned char salt[SALT_LEN];
	const char *sealed_hex;
	size_t sealed_hexlen;
	size_t adlen;
};

static int parse_wrapped(struct wrapped *w, const char *text, size_t len)
{
	const char *s = text, *end = text + len, *v;
	size_t vlen;
	struct tm tm;
	char date[32], *rest;

	memset(w, 0, sizeof(*w));
	if (len < 13 || memcmp(s, "backup-key 1\n", 13))
		return ERR_CORRUPT;
	s += 13;
	if (take_line(&s, end, "id", &v, &vlen) < 0 || vlen != CRYPTO_KEYID_HEX ||
	    strspn(v, "0123456789abcdef") < CRYPTO_KEYID_HEX)
		return ERR_CORRUPT;
	memcpy(w->info.id, v, CRYPTO_KEYID_HEX);
	if (take_line(&s, end, "created", &v, &vlen) < 0 || vlen >= sizeof(date))
		return ERR_CORRUPT;
	memcpy(date, v, vlen);
	date[vlen] = '\0';
	memset(&tm, 0, sizeof(tm));
	rest = strptime(date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!rest || *rest)
		return ERR_CORRUPT;
	w->info.created = timegm(&tm);
	if (take_line(&s, end, "kdf", &v, &vlen) < 0 || parse_kdf(&w->info.kdf, v, vlen) < 0)
		return ERR_CORRUPT;
	if (take_line(&s, end, "salt", &v, &vlen) < 0 || unhex(w->salt, SALT_LEN, v, vlen) < 0)
		return ERR_CORRUPT;
	if (take_line(&s, end, "check", &v, &vlen) < 0 ||
	    unhex(w->info.check, CRYPTO_CHECK_LEN, v, vlen) < 0)
		return ERR_CORRUPT;
	w->adlen = s - text;
	if (take_line(&s, end, "sealed", &v, &vlen) < 0 ||
	    vlen != 2 * (CRYPTO_SEAL_OVERHEAD + CRYPTO_KEY_LEN) || s != end)
		return ERR_CORRUPT;
	w->sealed_hex = v;
	w->sealed_hexlen = vlen;
	return 0;
}

int crypto_key_parse(struct crypto_key_info *out, const char *text, size_t len)
{
	struct wrapped w;
	int ret = parse_wrapped(&w, text, len);

	if (!ret)
		*out = w.info;
	return ret;
}

int crypto_key_wrap(struct strbuf *out, const struct crypto_keys *keys, time_t created,
		    const void *pass, size_t passlen, const struct scrypt_params *params)
{
	unsigned char id[CRYPTO_KEYID_HEX / 2], salt[SALT_LEN], kek[CRYPTO_KEY_LEN];
	struct strbuf sb = STRBUF_INIT, sealed = STRBUF_INIT;
	char date[32];
	struct tm tm;
	int ret = -1;

	if (crypto_random(id, sizeof(id)) < 0 || crypto_random(salt, sizeof(salt)) < 0)
		return -1;
	gmtime_r(&created, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strbuf_addstr(&sb, "backup-key 1\nid ");
	add_hex(&sb, id, sizeof(id));
	strbuf_addf(&sb, "\ncreated %s\nkdf scrypt %llu %u %u\nsalt ", date,
		    (unsigned long long)params->n, params->r, params->p);
	add_hex(&sb, salt, sizeof(salt));
	strbuf_addstr(&sb, "\ncheck ");
	add_hex(&sb, keys->check, sizeof(keys->check));
	strbuf_addch(&sb, '\n');
	if (crypto_scrypt(kek, sizeof(kek), pass, passlen, salt, sizeof(salt), params) < 0 ||
	    crypto_seal(&sealed, kek, sb.buf, sb.len, keys->master, CRYPTO_KEY_LEN) < 0)
		goto out;
	strbuf_addstr(&sb, "sealed ");
	add_hex(&sb, (unsigned char *)sealed.buf, sealed.len);
	strbuf_addch(&sb, '\n');
	strbuf_add(out, sb.buf, sb.len);
	ret = 0;
out:
	crypto_wipe(kek, sizeof(kek));
	strbuf_release(&sealed);
	strbuf_release(&sb);
	return ret;
}

int crypto_key_unwrap(struct crypto_keys **out, const char *text, size_t len,
		      const void *pass, size_t passlen)
{
	unsigned char kek[CRYPTO_KEY_LEN], sealed[CRYPTO_SEAL_OVERHEAD + CRYPTO_KEY_LEN];
	struct strbuf master = STRBUF_INIT;
	struct crypto_keys *k = NULL;
	struct wrapped w;
	int ret;

	*out = NULL;
	ret = parse_wrapped(&w, text, len);
	if (ret < 0)
		return ret;
	if (unhex(sealed, sizeof(sealed), w.sealed_hex, w.sealed_hexlen) < 0)
		return ERR_CORRUPT;
	if (crypto_scrypt(kek, sizeof(kek), pass, passlen, w.salt, SALT_LEN, &w.info.kdf) < 0)
		return -1;
	strbuf_grow(&master, CRYPTO_KEY_LEN);
	ret = crypto_open(&master, kek, text, w.adlen, sealed, sizeof(sealed));
	crypto_wipe(kek, sizeof(kek));
	if (ret == ERR_CORRUPT) {
		ret = 1;
	} else if (!ret && master.len == CRYPTO_KEY_LEN) {
		ret = crypto_keys_from_master(&k, (unsigned char *)master.buf);
		/* The tag covers the check line: a mismatch is a key wrapped
		 * wrongly, never a wrong passphrase. */
		if (!ret && CRYPTO_memcmp(k->check, w.info.check, CRYPTO_CHECK_LEN)) {
			crypto_keys_free(k);
			k = NULL;
			ret = ERR_CORRUPT;
		}
	} else if (!ret) {
		ret = ERR_CORRUPT;
	}
	crypto_wipe(master.buf, master.len);
	strbuf_release(&master);
	*out = k;
	return ret;
}

void crypto_key_export(struct strbuf *out, const struct crypto_keys *keys)
{
	int i;

	strbuf_addstr(out, "backup-master-key 1\ncheck ");
	add_hex(out, keys->check, CRYPTO_CHECK_LEN);
	strbuf_addstr(out, "\nkey");
	for (i = 0; i < CRYPTO_KEY_LEN; i += 4) {
		strbuf_addch(out, ' ');
		add_hex(out, keys->master + i, 4);
	}
	strbuf_addch(out, '\n');
}

/* Copies the hex digits of [s, s + len) into out, skipping blanks. */
static size_t squeeze(char *out, size_t max, const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')
			continue;
		if (n == max)
			return max + 1;
		out[n++] = s[i];
	}
	return n;
}

int crypto_key_import(struct crypto_keys **out, const char *text, size_t len)
{
	unsigned char master[CRYPTO_KEY_LEN], check[CRYPTO_CHECK_LEN];
	char hex[2 * CRYPTO_KEY_LEN + 1];
	const char *s = text, *end = text + len, *v;
	struct crypto_keys *k = NULL;
	size_t vlen, n;
	int ret = ERR_CORRUPT;

	*out = NULL;
	if (len < 20 || memcmp(s, "backup-master-key 1\n", 20))
		return ERR_CORRUPT;
	s += 20;
	if (take_line(&s, end, "check", &v, &vlen) < 0 ||
	    (n = squeeze(hex, 2 * CRYPTO_CHECK_LEN, v, vlen)) > 2 * CRYPTO_CHECK_LEN ||
	    unhex(check, CRYPTO_CHECK_LEN, hex, n) < 0)
		return ERR_CORRUPT;
	if (take_line(&s, end, "key", &v, &vlen) < 0 ||
	    (n = squeeze(hex, 2 * CRYPTO_KEY_LEN, v, vlen)) > 2 * CRYPTO_KEY_LEN ||
	    unhex(master, CRYPTO_KEY_LEN, hex, n) < 0)
		goto out;
	if (crypto_keys_from_master(&k, master) < 0) {
		ret = -1;
		goto out;
	}
	if (CRYPTO_memcmp(k->check, check, CRYPTO_CHECK_LEN)) {
		crypto_keys_free(k);
		k = NULL;
		goto out;
	}
	ret = 0;
out:
	crypto_wipe(master, sizeof(master));
	crypto_wipe(hex, sizeof(hex));
	*out = k;
	return ret;
}
