/*
 * pack.h — our writer of git pack files (pack v2 with an index v2).
 *
 * Objects are streamed into a temporary file objects/pack/tmp_pack_XXXXXX
 * through a 1 MiB buffer, so memory does not grow with the pack. The object
 * count in the header is only known at the end: pack_writer_flush() writes
 * the header then, hashes the file as written (it is in the page cache) for
 * the trailer, fsyncs it, writes the .idx under a temporary name, and
 * renames pack then index, fsyncing the directory after each (git readers
 * ignore a pack without its index). Only after flush returns may anything
 * refer to the objects. The caller flushes when pack_writer_full() says the
 * pack reached max_bytes. A failed write loses the pack being written: the
 * writer then refuses everything, and its temporary file is removed by
 * pack_writer_free() (or, after a kill, by the next space reclamation).
 *
 * Blob payloads are zstd frames that the caller made; the writer wraps them
 * in zlib *stored* blocks (git's pack format demands a zlib stream) so they
 * are never compressed twice. Trees and commits are deflated normally.
 *
 * The writer is not thread-safe; its user serialises calls.
 */
#ifndef PACK_H
#define PACK_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

enum pack_type {
	PACK_COMMIT = 1,
	PACK_TREE = 2,
	PACK_BLOB = 3,
};

struct pack_entry {
	unsigned char oid[SHA1_LEN];
	uint64_t offset;
	uint32_t crc;
};

struct pack_writer;

int pack_writer_new(struct pack_writer **out, const char *pack_dir, size_t max_bytes);
void pack_writer_free(struct pack_writer *pw);

/*
 * Appends an object whose git id is oid. Blobs are stored (not deflated),
 * other types deflated. Returns 0, or -1 after reporting a write error.
 */
int pack_writer_add(struct pack_writer *pw, enum pack_type type,
		    const unsigned char oid[SHA1_LEN], const void *data, size_t len);

/*
 * Appends an entry copied verbatim from another pack (its header and zlib
 * stream, not a delta), with the CRC32 that pack's index gives for it: space
 * reclamation moves live objects without recompressing them.
 */
int pack_writer_add_raw(struct pack_writer *pw, const unsigned char oid[SHA1_LEN],
			const void *raw, size_t len, uint32_t crc);

/* Number of objects and bytes waiting to be flushed. */
size_t pack_writer_count(const struct pack_writer *pw);
size_t pack_writer_bytes(const struct pack_writer *pw);
int pack_writer_full(const struct pack_writer *pw);

/*
 * Makes the waiting objects durable as one pack. On success *name_out (if
 * not NULL) is set to the pack's name "pack-HASH" (caller frees), or NULL
 * when nothing was waiting; the writer is then empty and reusable. On error
 * nothing is left under a pack name and the objects stay waiting.
 */
int pack_writer_flush(struct pack_writer *pw, char **name_out);

/* Encodes the object header of a pack entry; returns its length (<= 16). */
size_t pack_entry_header(unsigned char *out, enum pack_type type, uint64_t size);

#endif
