#include <pthread.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "hash.h"
#include "usage.h"

static EVP_MD *md_sha1, *md_sha256;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Fetching once saves the per-call algorithm lookup of EVP_sha1(). */
static void fetch(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!md_sha1 || !md_sha256)
		die("libcrypto offers no SHA-1 or SHA-256");
}

void sha1_init(struct sha1_ctx *c)
{
	pthread_once(&fetch_once, fetch);
	c->md = EVP_MD_CTX_new();
	if (!c->md || !EVP_DigestInit_ex(c->md, md_sha1, NULL))
		die("cannot start a SHA-1 digest");
}

void sha1_update(struct sha1_ctx *c, const void *data, size_t len)
{
	EVP_DigestUpdate(c->md, data, len);
}

void sha1_final(struct sha1_ctx *c, unsigned char out[SHA1_LEN])
{
	EVP_DigestFinal_ex(c->md, out, NULL);
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
}

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	pthread_once(&fetch_once, fetch);
	if (!EVP_Digest(data, len, out, NULL, md_sha256, NULL))
		die("SHA-256 failed");
}

void object_id(const char *type, const void *data, size_t len, unsigned char out[SHA1_LEN])
{
	struct sha1_ctx c;
	char hdr[64];
	int n = snprintf(hdr, sizeof(hdr), "%s %zu", type, len) + 1;

	sha1_init(&c);
	sha1_update(&c, hdr, n);
	sha1_update(&c, data, len);
	sha1_final(&c, out);
}

void hex_encode(char *out, const unsigned char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}
