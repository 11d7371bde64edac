/* Unit test of the in-memory dedup index: growth past several entry blocks
 * and table sizes, keys that share their slot and tag, the oid set, sidecars. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup.h"
#include "fsutil.h"
#include "usage.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

/* A key from a number; with same_prefix, keys share the 12 bytes that pick
 * the slot and the tag, and differ only further on. */
static void key_of(unsigned char key[SHA256_LEN], unsigned n, int same_prefix)
{
	memset(key, 0xa5, SHA256_LEN);
	if (same_prefix) {
		memcpy(key + 20, &n, sizeof(n));
	} else {
		sha256(&n, sizeof(n), key);
	}
}

static void oid_of(unsigned char oid[SHA1_LEN], unsigned n)
{
	memset(oid, 0, SHA1_LEN);
	memcpy(oid + 16, &n, sizeof(n));
	oid[0] = 1;
}

int main(void)
{
	const unsigned n = 200000, collide = 300;
	unsigned char key[SHA256_LEN], oid[SHA1_LEN], got[SHA1_LEN];
	struct dedup *d;
	unsigned i, found = 0;

	CHECK(dedup_load(&d, NULL, NULL) == 0);
	CHECK(!dedup_lookup(d, key, got));
	for (i = 0; i < n; i++) {
		key_of(key, i, 0);
		oid_of(oid, i);
		dedup_insert(d, key, oid);
	}
	for (i = 0; i < collide; i++) {
		key_of(key, i, 1);
		oid_of(oid, n + i);
		dedup_insert(d, key, oid);
	}
	CHECK(dedup_count(d) == n + collide);
	/* A key seen again keeps its first blob. */
	key_of(key, 7, 0);
	oid_of(oid, 999999);
	dedup_insert(d, key, oid);
	CHECK(dedup_count(d) == n + collide);
	for (i = 0; i < n; i++) {
		key_of(key, i, 0);
		oid_of(oid, i);
		found += dedup_lookup(d, key, got) && !memcmp(got, oid, SHA1_LEN);
	}
	for (i = 0; i < collide; i++) {
		key_of(key, i, 1);
		oid_of(oid, n + i);
		found += dedup_lookup(d, key, got) && !memcmp(got, oid, SHA1_LEN);
	}
	CHECK(found == n + collide);
	for (i = n; i < n + 1000; i++) {
		key_of(key, i, 0);
		CHECK(!dedup_lookup(d, key, got));
	}
	key_of(key, collide + 1, 1);
	CHECK(!dedup_lookup(d, key, got));
	dedup_free(d);

	/* The oid set. */
	CHECK(dedup_load(&d, NULL, NULL) == 0);
	for (i = 0; i < 5000; i++) {
		oid_of(oid, 2 * i);
		dedup_add_oid(d, oid);
	}
	for (i = 0; i < 10000; i++) {
		oid_of(oid, i);
		CHECK(dedup_has_oid(d, oid) == !(i & 1));
	}
	dedup_free(d);

	/* Sidecars: written, loaded while their pack exists, ignored after. */
	{
		char dir[] = "/tmp/test_dedup.XXXXXX";
		struct dedup_entry e[3];
		char *sdx, *idx;

		CHECK(mkdtemp(dir) != NULL);
		for (i = 0; i < 3; i++) {
			key_of(e[i].key, i, 0);
			oid_of(e[i].oid, i);
		}
		CHECK(dedup_write_sidecar(dir, "pack-x", e, 3) == 0);
		idx = xasprintf("%s/pack-x.idx", dir);
		sdx = xasprintf("%s/pack-x.sdx", dir);
		CHECK(write_file_durable(idx, "", 0, 0600) == 0);
		CHECK(dedup_load(&d, dir, dir) == 0);
		CHECK(dedup_count(d) == 3);
		key_of(key, 2, 0);
		oid_of(oid, 2);
		CHECK(dedup_lookup(d, key, got) && !memcmp(got, oid, SHA1_LEN));
		dedup_free(d);
		unlink(idx);
		CHECK(dedup_load(&d, dir, dir) == 0);
		CHECK(dedup_count(d) == 0);
		dedup_free(d);
		unlink(sdx);
		rmdir(dir);
		free(idx);
		free(sdx);
	}
	if (!failed)
		printf("%u keys, %u sharing slot and tag, the oid set and sidecars\n", n + collide, collide);
	return failed;
}
