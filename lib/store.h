/*
 * store.h — the object store: putting blobs, trees and commits into packs,
 * and reading blobs back.
 *
 * store_put_blob() is the deduplicating path: the SHA-256 of the plaintext
 * is looked up in the dedup index, and only an unknown chunk is compressed
 * (one zstd frame with its checksum, docs/FORMAT.md) and appended to the
 * pack being written. It may be called from several threads at once; each
 * calling thread must call store_thread_done() before it exits.
 *
 * Nothing written is visible to readers, nor may be referenced, before
 * store_flush() has returned 0: then every object put so far is durable in a
 * pack with its index and dedup sidecar.
 *
 * In an encrypted repository (format 3, opened with its keys: r->keys) a
 * blob's dedup key is instead the HMAC-SHA-256 of its plaintext under the
 * dedup subkey, so that nobody without the key can test whether a known
 * chunk is stored, and the payload is that key in the clear followed by the
 * zstd frame sealed (crypto_seal()) under the blob subkey with the key as
 * associated data: a sealed frame moved behind another key fails its tag.
 * The key in front lets a pack's sidecar be rebuilt without decoding.
 * Reading opens the seal before decoding; without r->keys nothing of an
 * encrypted repository decodes. Trees and commits are not encrypted here.
 */
#ifndef STORE_H
#define STORE_H

#include <stdint.h>

#include "crypto.h"
#include "hash.h"
#include "pack.h"
#include "repo.h"
#include "strbuf.h"

struct store_stats {
	uint64_t blobs_new;	/* blobs written */
	uint64_t blobs_reused;	/* blobs found by their SHA-256 */
	uint64_t bytes_new;	/* compressed bytes written */
	uint64_t objects_new;	/* trees and commits written */
};

struct store;

int store_open(struct store **out, struct repo *r);
/* Frees the store; objects not flushed are dropped. */
void store_free(struct store *s);

int store_put_blob(struct store *s, const void *data, size_t len, unsigned char oid[SHA1_LEN]);
/* The same for a metadata blob (a .meta), which goes with the trees. */
int store_put_meta_blob(struct store *s, const void *data, size_t len, unsigned char oid[SHA1_LEN]);
/* A tree or commit, given as git's object payload. Main thread only. */
int store_put_object(struct store *s, enum pack_type type, const void *data, size_t len,
		     unsigned char oid[SHA1_LEN]);
int store_flush(struct store *s);
void store_thread_done(void);
void store_get_stats(struct store *s, struct store_stats *out);
/* The repository the store writes into. */
struct repo *store_repo(const struct store *s);

/*
 * Reads blob oid and decodes its zstd frame into out (appended). Returns 0,
 * ERR_NOTFOUND when the object is missing, or ERR_CORRUPT when it fails its
 * git hash, its zstd checksum or decoding; prints nothing.
 */
int store_read_blob(struct repo *r, const unsigned char oid[SHA1_LEN], struct strbuf *out);
/*
 * Rebuilds every pack's dedup sidecar from the pack itself: each blob is
 * read, decoded and hashed. For a damaged or lost sidecar; slow (it reads
 * all data). Returns 0, or -1 after reporting.
 */
int store_rebuild_index(struct repo *r, size_t *npacks, size_t *nblobs);
/*
 * The same for the packs that have no sidecar at all: those of a copy that
 * git made (it does not carry backup/), of a stock `git repack`, or of a
 * job killed between a pack and its sidecar. store_open() calls it, so the
 * next backup deduplicates against them; a pack is read once, since it has
 * a sidecar after. Takes the lock ".dedup". Returns 0, or -1 after
 * reporting.
 */
int store_index_missing(struct repo *r, size_t *npacks, size_t *nblobs);

/*
 * The dedup key of a chunk's plaintext in r: its SHA-256, or in an
 * encrypted repository its MAC under the dedup subkey.
 */
void store_key(const struct repo *r, const void *data, size_t len, unsigned char key[SHA256_LEN]);

/* What an encrypted blob's payload adds to its zstd frame: the key in
 * front, and the seal's format byte, nonce and tag. */
#define BLOB_SEALED_OVERHEAD (SHA256_LEN + CRYPTO_SEAL_OVERHEAD)
/*
 * Opens the payload of an encrypted blob of r, appending its zstd frame
 * to frame; ERR_CORRUPT, printing nothing, when it is short or fails its
 * tag (altered, another repository's, or moved behind another key), or
 * when r was not opened with its keys.
 */
int blob_unseal(const struct repo *r, const void *data, size_t len, struct strbuf *frame);
/*
 * Decodes a blob's payload as stored in r into out (appended): opened
 * first (into scratch, reset here) in an encrypted repository. dctx may
 * be NULL. ERR_CORRUPT on damage.
 */
int blob_payload_decode(const struct repo *r, void *dctx, struct strbuf *scratch,
			const void *data, size_t len, struct strbuf *out);

/* Decodes one zstd frame (a blob's payload) into out; ERR_CORRUPT on damage. */
int blob_decode(const void *data, size_t len, struct strbuf *out);
/* The same with a reusable ZSTD_DCtx (a thread's own). */
int blob_decode_dctx(void *dctx, const void *data, size_t len, struct strbuf *out);
/* The largest blob payload or plaintext this version reads or writes. */
#define BLOB_MAX ((size_t)1 << 30)

#endif
