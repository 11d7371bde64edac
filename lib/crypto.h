/*
 * crypto.h — the keys and ciphers of an encrypted repository.
 *
 * Everything comes from OpenSSL 3's libcrypto, which the build links
 * already: no cipher, MAC or KDF is written here, only how they are used.
 *
 * An encrypted repository has one random 256-bit master key. It is never
 * stored in the clear: each passphrase wraps it (crypto_key_wrap()) through
 * scrypt, a memory-hard KDF whose parameters are recorded with the wrapped
 * key, and `backup key export` prints it for a paper or escrow copy
 * (crypto_key_export()). The master key itself encrypts nothing: each use
 * has its own subkey, derived from it with HKDF-SHA-256 under a fixed label
 * (struct crypto_keys), so that no two uses ever share a key.
 *
 * Sealing (crypto_seal()) is AES-256-GCM with a random 96-bit nonce; the
 * object's id is bound as associated data, so that a valid ciphertext moved
 * to another id fails to open. AES-256-GCM was chosen over ChaCha20-Poly1305
 * by measurement (`make bench-crypto`, docs/PERFORMANCE.md). A random nonce
 * stays safe for 2^32 seals under one key (NIST SP 800-38D, 8.3); a
 * repository would need billions of objects to approach it.
 *
 * Deduplication keys are HMAC-SHA-256 of the plaintext under the dedup
 * subkey (crypto_mac()): whoever lacks the key cannot test whether a known
 * file is in the repository, and every machine of one repository computes
 * the same key for the same bytes.
 *
 * Secrets are wiped (crypto_wipe()) before their memory is given back.
 * Functions return 0 or a negative code; the few failures a caller acts on
 * (a tag that does not verify, a passphrase that opens nothing) print
 * nothing, every other failure prints one line. They are safe to call from
 * several threads.
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct strbuf;

#define CRYPTO_KEY_LEN 32
#define CRYPTO_MAC_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
/* A sealed buffer: one format byte, the nonce, the ciphertext, the tag. */
#define CRYPTO_SEAL_OVERHEAD (1 + CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)
/* The length of a key's id in hex and of the public check value. */
#define CRYPTO_KEYID_HEX 16
#define CRYPTO_CHECK_LEN 16

/* The subkeys of a master key, one per use. */
enum crypto_use {
	CRYPTO_BLOB,	/* sealing blobs: file chunks, metadata records */
	CRYPTO_DEDUP,	/* the MAC of a chunk's plaintext: its dedup key */
	CRYPTO_NAME,	/* the MAC of file and folder names */
	CRYPTO_COMMIT,	/* sealing the private fields of a backup's commit */
	CRYPTO_NAME_CIPHER,	/* enciphering names (their IV is their MAC) */
	CRYPTO_NUSES
};

struct crypto_keys {
	unsigned char master[CRYPTO_KEY_LEN];
	unsigned char sub[CRYPTO_NUSES][CRYPTO_KEY_LEN];
	/* A public value that names the master key without revealing it: a
	 * key file and an exported key are matched against it. */
	unsigned char check[CRYPTO_CHECK_LEN];
	/* Names these keys in each thread's libcrypto contexts, which
	 * crypto_keys_mac() and crypto_keys_ctr() key once per thread. */
	uint64_t serial;
};

/*
 * Called first in main(), before libcrypto allocates anything: its blocks
 * of 8 MiB or more (scrypt's) get transparent huge pages where the kernel
 * offers them, which makes opening a key about twice as fast. Without the
 * call everything works the same, more slowly.
 */
void crypto_init(void);

/* Overwrites len bytes of p with zeros in a way the compiler keeps. */
void crypto_wipe(void *p, size_t len);

/* Fills buf with len bytes from the CSPRNG; -1 after printing why not. */
int crypto_random(void *buf, size_t len);

/*
 * HKDF-SHA-256 (RFC 5869), extract then expand: outlen bytes of key
 * material from key, an optional salt and info (either may be empty).
 */
int crypto_hkdf(unsigned char *out, size_t outlen, const void *key, size_t keylen,
		const void *salt, size_t saltlen, const void *info, size_t infolen);

/*
 * A new random master key with its subkeys, or the subkeys of a known
 * master key. The caller frees *out with crypto_keys_free(), which wipes it.
 */
int crypto_keys_new(struct crypto_keys **out);
int crypto_keys_from_master(struct crypto_keys **out, const unsigned char master[CRYPTO_KEY_LEN]);
void crypto_keys_free(struct crypto_keys *k);

/*
 * HMAC-SHA-256 of data under subkey use of k: crypto_mac() with
 * k->sub[use], several times faster for short data. Thread-safe: each
 * thread keys its own context once (freed when it exits or frees k).
 */
void crypto_keys_mac(unsigned char out[CRYPTO_MAC_LEN], const struct crypto_keys *k, enum crypto_use use,
		     const void *data, size_t len);

/* HMAC-SHA-256 of data under key (RFC 2104). */
void crypto_mac(unsigned char out[CRYPTO_MAC_LEN], const unsigned char *key, size_t keylen,
		const void *data, size_t len);

/*
 * Seals len bytes of plain under key with id as associated data, appending
 * CRYPTO_SEAL_OVERHEAD + len bytes to out. crypto_seal_nonce() takes the
 * nonce instead of drawing one: for known-answer tests, never reuse one.
 */
int crypto_seal(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		const void *id, size_t idlen, const void *plain, size_t len);
int crypto_seal_nonce(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		      const unsigned char nonce[CRYPTO_NONCE_LEN],
		      const void *id, size_t idlen, const void *plain, size_t len);
/*
 * Opens what crypto_seal() made, appending the plaintext to out. Returns
 * ERR_CORRUPT, printing nothing and leaving out as it was, when the
 * buffer is short, of an unknown format, or fails its tag: altered, sealed
 * under another key, or sealed for another id. The caller names the object.
 */
int crypto_open(struct strbuf *out, const unsigned char key[CRYPTO_KEY_LEN],
		const void *id, size_t idlen, const void *sealed, size_t len);

/*
 * AES-256-CTR of len bytes (at most 1 GiB) from in to out with the 16-byte
 * initial counter block iv; its own inverse. For sealed names, whose iv is
 * a MAC of what they are bound to (lib/tree.h): never with a repeated iv
 * for other bytes.
 */
int crypto_ctr(unsigned char *out, const unsigned char key[CRYPTO_KEY_LEN], const unsigned char iv[16],
	       const void *in, size_t len);

/* crypto_ctr() under subkey use of k, with the key schedule kept per
 * thread as crypto_keys_mac() keeps its context: for short inputs. */
int crypto_keys_ctr(unsigned char *out, const struct crypto_keys *k, enum crypto_use use,
		    const unsigned char iv[16], const void *in, size_t len);

/* 1 when the len bytes at a and b are equal, in time independent of where they differ. */
int crypto_equal(const void *a, const void *b, size_t len);

/*
 * The first n bytes (at most 4096) of what crypto_open() would give, from
 * the start of the ciphertext alone and WITHOUT verifying the tag: a hint
 * only (a restore places chunks by the sizes in their frame headers), for
 * callers that open the whole buffer afterwards and trust nothing before
 * that. ERR_CORRUPT, printing nothing, when the buffer is too short for n.
 */
int crypto_peek(unsigned char *out, size_t n, const unsigned char key[CRYPTO_KEY_LEN],
		const void *sealed, size_t len);

/*
 * scrypt (RFC 7914): N a power of two above 1, r and p at least 1, r * p
 * below 2^30, and at most 1 GiB of memory (128 * r * N bytes); other
 * parameters are refused with a message.
 */
struct scrypt_params {
	uint64_t n;
	uint32_t r, p;
};
int crypto_scrypt(unsigned char *out, size_t outlen, const void *pass, size_t passlen,
		  const void *salt, size_t saltlen, const struct scrypt_params *params);

/*
 * The parameters new wrapped keys get: N = 2^16, r = 8, p = 1 (64 MiB,
 * 0.4 s of CPU here, docs/PERFORMANCE.md). The test suite sets BACKUP_INSECURE_TEST_KDF=1 to get
 * N = 2^10, r = 8, p = 1 instead, so that its hundreds of key operations
 * stay fast; the parameters are recorded with each key, so such a key
 * still opens without the variable, and `backup key list` shows them.
 */
void crypto_scrypt_defaults(struct scrypt_params *out);

/*
 * A wrapped key, the text that keeps the master key under one passphrase:
 *
 *	backup-key 1
 *	id 3f9a0c41d2e87b15
 *	created 2026-12-07T15:04:05Z
 *	kdf scrypt 65536 8 1
 *	salt <32 bytes, hex>
 *	check <the master key's check value, hex>
 *	sealed <crypto_seal() of the master key, hex>
 *
 * The sealing key is scrypt(passphrase, salt); every line above "sealed" is
 * its associated data, so that no field can be changed unnoticed.
 * crypto_key_wrap() appends a new one (a random id and salt) to out.
 */
int crypto_key_wrap(struct strbuf *out, const struct crypto_keys *keys, time_t created,
		    const void *pass, size_t passlen, const struct scrypt_params *params);

/* The fields of a wrapped key that need no passphrase. */
struct crypto_key_info {
	char id[CRYPTO_KEYID_HEX + 1];
	time_t created;
	struct scrypt_params kdf;
	unsigned char check[CRYPTO_CHECK_LEN];
};

/* Parses a wrapped key; ERR_CORRUPT (printing nothing) when malformed or
 * its parameters are out of range. */
int crypto_key_parse(struct crypto_key_info *out, const char *text, size_t len);

/*
 * Unwraps a wrapped key with a passphrase into *out (free it with
 * crypto_keys_free()). Returns 1, printing nothing, when the passphrase
 * does not open this key; ERR_CORRUPT, printing nothing, when the text is
 * malformed or asks for scrypt parameters out of range (more than 1 GiB of
 * memory: a hostile file must not exhaust the machine); -1 after printing
 * why when libcrypto fails.
 */
int crypto_key_unwrap(struct crypto_keys **out, const char *text, size_t len,
		      const void *pass, size_t passlen);

/*
 * The master key for paper or escrow, three lines of hex:
 *
 *	backup-master-key 1
 *	check <the check value>
 *	key <the master key, 64 hex digits in groups of 8>
 *
 * crypto_key_import() reads it back (blanks between the groups are
 * ignored) and verifies that the key matches its check line, which catches
 * a mistyped digit; ERR_CORRUPT, printing nothing, when it does not.
 */
void crypto_key_export(struct strbuf *out, const struct crypto_keys *keys);
int crypto_key_import(struct crypto_keys **out, const char *text, size_t len);

#endif
