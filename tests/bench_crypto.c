/*
 * bench_crypto.c — `make bench-crypto`: the speeds that chose the cipher of
 * an encrypted repository (lib/crypto.h), on this machine, one thread.
 *
 * Both AEADs libcrypto offers are timed through the same EVP calls, sealing
 * and opening buffers of the sizes a repository holds (4 KiB metadata
 * records, 256 KiB average chunks, 1 MiB largest chunks); then
 * crypto_seal()/crypto_open() themselves, HMAC-SHA-256 (dedup keys) beside
 * plain SHA-256 (today's dedup keys), and scrypt at the candidate
 * parameters of a wrapped key. Times are this thread's CPU time, and each
 * figure is the best of five tries: the machines are shared, and other
 * jobs would otherwise be counted as ours.
 * Figures go to docs/PERFORMANCE.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "hash.h"
#include "strbuf.h"
#include "usage.h"

#define TOTAL ((size_t)256 << 20)	/* bytes per try */
#define TRIES 5			/* the best of them is the figure */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Seals (or opens, with dec) buf of len bytes with cipher, TOTAL bytes in
 * all; returns GB/s. */
static double aead(const char *name, int dec, unsigned char *buf, size_t len)
{
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	unsigned char key[32] = { 1 }, nonce[12] = { 2 }, tag[16], *out = xmalloc(len + 16);
	size_t i, rounds = TOTAL / len;
	double t0;
	int n;

	if (!cipher)
		die("libcrypto offers no %s", name);
	if (dec) {
		/* A real ciphertext and tag to open. */
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

		EVP_EncryptInit_ex2(c, cipher, key, nonce, NULL);
		EVP_EncryptUpdate(c, NULL, &n, (unsigned char *)"id", 2);
		EVP_EncryptUpdate(c, buf, &n, buf, (int)len);
		EVP_EncryptFinal_ex(c, buf + len, &n);
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag);
		EVP_CIPHER_CTX_free(c);
	}
	t0 = now();
	for (i = 0; i < rounds; i++) {
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

		if (!dec) {
			nonce[0] = (unsigned char)i;
			EVP_EncryptInit_ex2(c, cipher, key, nonce, NULL);
			EVP_EncryptUpdate(c, NULL, &n, (unsigned char *)"id", 2);
			EVP_EncryptUpdate(c, out, &n, buf, (int)len);
			EVP_EncryptFinal_ex(c, out + len, &n);
			EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag);
		} else {
			EVP_DecryptInit_ex2(c, cipher, key, nonce, NULL);
			EVP_DecryptUpdate(c, NULL, &n, (unsigned char *)"id", 2);
			EVP_DecryptUpdate(c, out, &n, buf, (int)len);
			EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag);
			if (EVP_DecryptFinal_ex(c, out + len, &n) <= 0)
				die("%s: the tag did not verify", name);
		}
		EVP_CIPHER_CTX_free(c);
	}
	t0 = now() - t0;
	free(out);
	EVP_CIPHER_free(cipher);
	return (double)rounds * len / t0 / 1e9;
}

static double ours(int dec, unsigned char *buf, size_t len)
{
	struct strbuf sealed = STRBUF_INIT, plain = STRBUF_INIT;
	unsigned char key[32] = { 3 };
	size_t i, rounds = TOTAL / len;
	double t0;

	crypto_seal(&sealed, key, "id", 2, buf, len);
	strbuf_grow(&plain, len);
	t0 = now();
	for (i = 0; i < rounds; i++) {
		if (dec) {
			strbuf_reset(&plain);
			if (crypto_open(&plain, key, "id", 2, sealed.buf, sealed.len) < 0)
				die("crypto_open failed");
		} else {
			strbuf_reset(&sealed);
			crypto_seal(&sealed, key, "id", 2, buf, len);
		}
	}
	t0 = now() - t0;
	strbuf_release(&sealed);
	strbuf_release(&plain);
	return (double)rounds * len / t0 / 1e9;
}

static double digest(int mac, unsigned char *buf, size_t len)
{
	unsigned char key[32] = { 4 }, out[32];
	size_t i, rounds = TOTAL / len;
	double t0 = now();

	for (i = 0; i < rounds; i++) {
		buf[0] = (unsigned char)i;
		if (mac)
			crypto_mac(out, key, 32, buf, len);
		else
			sha256(buf, len, out);
	}
	return (double)rounds * len / (now() - t0) / 1e9;
}

int main(void)
{
	static const size_t sizes[] = { 4 << 10, 256 << 10, 1 << 20 };
	static const int logn[] = { 15, 16, 17 };
	unsigned char *buf = xmalloc((1 << 20) + 16);
	size_t s, i;

	for (i = 0; i < (1 << 20) + 16; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	printf("GB/s of CPU time, one thread, best of %d tries of %zu MiB\n", TRIES, TOTAL >> 20);
	printf("%-34s %9s %9s %9s\n", "", "4 KiB", "256 KiB", "1 MiB");
#define ROW(label, expr) do { \
		printf("%-34s", label); \
		for (s = 0; s < 3; s++) { \
			size_t len = sizes[s]; \
			double best = 0, r; \
			int t; \
			for (t = 0; t < TRIES; t++) \
				if ((r = (expr)) > best) \
					best = r; \
			printf(" %9.2f", best); \
			fflush(stdout); \
		} \
		printf("\n"); \
	} while (0)
	ROW("AES-256-GCM seal (EVP)", aead("AES-256-GCM", 0, buf, len));
	ROW("AES-256-GCM open (EVP)", aead("AES-256-GCM", 1, buf, len));
	ROW("ChaCha20-Poly1305 seal (EVP)", aead("ChaCha20-Poly1305", 0, buf, len));
	ROW("ChaCha20-Poly1305 open (EVP)", aead("ChaCha20-Poly1305", 1, buf, len));
	ROW("crypto_seal (AES-256-GCM)", ours(0, buf, len));
	ROW("crypto_open (AES-256-GCM)", ours(1, buf, len));
	ROW("SHA-256 (unencrypted dedup key)", digest(0, buf, len));
	ROW("HMAC-SHA-256 (crypto_mac)", digest(1, buf, len));
	free(buf);

	printf("\nscrypt, r=8 p=1, 32 bytes out\n");
	for (i = 0; i < sizeof(logn) / sizeof(logn[0]); i++) {
		struct scrypt_params p = { (uint64_t)1 << logn[i], 8, 1 };
		unsigned char out[32];
		double t0 = now();

		if (crypto_scrypt(out, 32, "passphrase", 10, "salt", 4, &p) < 0)
			return 1;
		printf("N=2^%d (%3llu MiB): %.3f s of CPU\n", logn[i],
		       (unsigned long long)(128 * 8 * p.n) >> 20, now() - t0);
	}
	return 0;
}
