/*
 * packread.h — reading blobs straight from the packs, from several threads.
 *
 * Restore reads every chunk of a backup once, so the reader is its hot
 * path. libgit2's reader inflates git's zlib framing, sums it with adler32
 * and hashes every object with its collision-detecting SHA-1 (about
 * 0.35 GB/s here), one thread at a time. This one reads an object of our
 * own packs with one or two pread()s, checks its stored-block framing,
 * hashes it with libcrypto's SHA-1 (the CPU's SHA extensions, ≈1 GB/s) and
 * decodes its zstd frame, whose checksum zstd verifies: the same two
 * checks, several times faster, on as many threads as call it.
 *
 * An object it does not recognise — in a pack that git gc rewrote (deltas,
 * real deflate), loose, or in a pack added after packset_open() — is read
 * through libgit2 instead (store_read_blob(), serialised).
 */
#ifndef PACKREAD_H
#define PACKREAD_H

#include <stdint.h>

#include "hash.h"
#include "repo.h"
#include "strbuf.h"

struct packset;

/* A reading thread's buffers: BLOB_READER_INIT, or strbuf_init() both
 * buffers; release when done. */
struct blob_reader {
	struct strbuf raw;
	void *dctx;		/* ZSTD_DCtx */
	struct strbuf frame;	/* an encrypted blob's opened frame */
};

#define BLOB_READER_INIT { STRBUF_INIT, NULL, STRBUF_INIT }

void blob_reader_release(struct blob_reader *br);

/* Loads the index of every pack of r. Returns 0, or -1 after reporting. */
int packset_open(struct packset **out, struct repo *r);
void packset_free(struct packset *ps);

/* As store_read_blob(): appends the plaintext of blob oid to out; 0,
 * ERR_NOTFOUND or ERR_CORRUPT, printing nothing. Thread-safe. */
int packset_read_blob(struct packset *ps, struct blob_reader *br,
		      const unsigned char oid[SHA1_LEN], struct strbuf *out);
/* The plaintext size of blob oid, from its zstd frame header alone (the
 * whole blob only when the object is not one of ours). Same returns. */
int packset_blob_size(struct packset *ps, struct blob_reader *br,
		      const unsigned char oid[SHA1_LEN], uint64_t *size);

#endif
