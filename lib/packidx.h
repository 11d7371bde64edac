/*
 * packidx.h — reading a pack index (git's idx version 2).
 *
 * The index lists a pack's object ids in sorted order with each object's
 * CRC32 and offset, and ends with the pack's checksum and its own.
 * packidx_read() verifies the index's own checksum and its structure, so
 * what it returns can be trusted as far as the index goes.
 */
#ifndef PACKIDX_H
#define PACKIDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hash.h"

struct packidx {
	size_t nr;
	unsigned char *oids;		/* nr * SHA1_LEN, sorted */
	uint32_t *crc;
	uint64_t *offset;
	unsigned char pack_sum[SHA1_LEN];
};

/* Returns 0, ERR_CORRUPT when the index fails its checksum or structure,
 * or -1 when it cannot be read (both print nothing). */
int packidx_read(struct packidx *out, const char *path);
/* The same from bytes in memory (the fuzz tests' entry point). */
int packidx_parse(struct packidx *out, const void *buf, size_t len);
void packidx_release(struct packidx *idx);
/* The position of oid in idx, or -1. */
ssize_t packidx_find(const struct packidx *idx, const unsigned char oid[SHA1_LEN]);

#endif
