/*
 * hash.h — SHA-1 (git object ids) and SHA-256 (deduplication keys).
 *
 * Both come from OpenSSL's libcrypto, which libgit2 already links and which
 * uses the CPU's SHA extensions: about 1 GB/s each here, four times
 * coreutils. The functions are safe to call from several threads.
 */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>

#define SHA1_LEN 20
#define SHA256_LEN 32

struct sha1_ctx {
	void *md;	/* EVP_MD_CTX */
};

void sha1_init(struct sha1_ctx *c);
void sha1_update(struct sha1_ctx *c, const void *data, size_t len);
/* Writes the digest and frees the context. */
void sha1_final(struct sha1_ctx *c, unsigned char out[SHA1_LEN]);

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);

/* The git object id of an object of type "blob", "tree" or "commit". */
void object_id(const char *type, const void *data, size_t len, unsigned char out[SHA1_LEN]);

/* Lower-case hex; out must hold 2 * len + 1 bytes. */
void hex_encode(char *out, const unsigned char *in, size_t len);

#endif
