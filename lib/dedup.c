#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dedup.h"
#include "fsutil.h"
#include "strbuf.h"
#include "usage.h"

#define SDX_MAGIC "BKDX"
#define SDX_VERSION 1
#define SDX_HEADER 12	/* magic, version, count */

/*
 * Entries live in blocks of ENTRY_BLOCK that never move; the hash table
 * holds 8-byte slots: the entry's number + 1 in the low half (0: empty)
 * and 32 more bits of its key in the high half, so that a probe rarely
 * touches an entry that is not the one sought. Growing the table copies
 * only slots. Per chunk: 52 bytes of entry and 16-32 bytes of slots.
 */
#define ENTRY_BITS 15
#define ENTRY_BLOCK ((size_t)1 << ENTRY_BITS)

struct dedup {
	uint64_t *slots;
	size_t mask, count;
	struct dedup_entry **blocks;
	size_t nblocks;
};

static size_t slot_of(const struct dedup *d, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return h & d->mask;
}

static uint64_t tag_of(const unsigned char *key)
{
	uint32_t t;

	memcpy(&t, key + 8, sizeof(t));
	return (uint64_t)t << 32;
}

static struct dedup_entry *entry(const struct dedup *d, uint64_t slot)
{
	size_t i = (uint32_t)slot - 1;

	return &d->blocks[i >> ENTRY_BITS][i & (ENTRY_BLOCK - 1)];
}

static void place(struct dedup *d, uint64_t slot)
{
	size_t i;

	for (i = slot_of(d, entry(d, slot)->key); d->slots[i]; i = (i + 1) & d->mask)
		;
	d->slots[i] = slot;
}

/* Doubles the table, or makes it hold want entries at a load under 1/2. */
static void resize(struct dedup *d, size_t want)
{
	uint64_t *old = d->slots;
	size_t i, oldn = old ? d->mask + 1 : 0, n = oldn ? 2 * oldn : 1024;

	while (n < 2 * want + 2)
		n *= 2;
	d->mask = n - 1;
	d->slots = xcalloc(n, sizeof(*d->slots));
	for (i = 0; i < oldn; i++)
		if (old[i])
			place(d, old[i]);
	free(old);
}

/* The slot of key, or of the empty place where it would go. */
static uint64_t *find(const struct dedup *d, const unsigned char *key)
{
	uint64_t tag = tag_of(key);
	size_t i;

	for (i = slot_of(d, key);; i = (i + 1) & d->mask) {
		uint64_t s = d->slots[i];

		if (!s || ((s & ~(uint64_t)UINT32_MAX) == tag && !memcmp(entry(d, s)->key, key, SHA256_LEN)))
			return &d->slots[i];
	}
}

void dedup_insert(struct dedup *d, const unsigned char key[SHA256_LEN],
		  const unsigned char oid[SHA1_LEN])
{
	struct dedup_entry *e;
	uint64_t *s;

	if (!d->slots || 2 * (d->count + 1) > d->mask + 1)
		resize(d, 0);
	s = find(d, key);
	if (*s)
		return;
	if (d->count == UINT32_MAX)
		die("the dedup index is full (4 billion chunks)");
	if ((d->count >> ENTRY_BITS) == d->nblocks) {
		d->blocks = xrealloc(d->blocks, (d->nblocks + 1) * sizeof(*d->blocks));
		d->blocks[d->nblocks++] = xmalloc(ENTRY_BLOCK * sizeof(struct dedup_entry));
	}
	*s = tag_of(key) | (d->count + 1);
	e = entry(d, *s);
	memcpy(e->key, key, SHA256_LEN);
	memcpy(e->oid, oid, SHA1_LEN);
	d->count++;
}

int dedup_lookup(const struct dedup *d, const unsigned char key[SHA256_LEN],
		 unsigned char oid[SHA1_LEN])
{
	uint64_t *s;

	if (!d->slots)
		return 0;
	s = find(d, key);
	if (!*s)
		return 0;
	memcpy(oid, entry(d, *s)->oid, SHA1_LEN);
	return 1;
}

int dedup_has_oid(const struct dedup *d, const unsigned char oid[SHA1_LEN])
{
	unsigned char key[SHA256_LEN] = { 0 }, v[SHA1_LEN];

	memcpy(key, oid, SHA1_LEN);
	return dedup_lookup(d, key, v);
}

void dedup_add_oid(struct dedup *d, const unsigned char oid[SHA1_LEN])
{
	unsigned char key[SHA256_LEN] = { 0 };

	memcpy(key, oid, SHA1_LEN);
	dedup_insert(d, key, oid);
}

size_t dedup_count(const struct dedup *d)
{
	return d->count;
}

void dedup_free(struct dedup *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->nblocks; i++)
		free(d->blocks[i]);
	free(d->blocks);
	free(d->slots);
	free(d);
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

int dedup_write_sidecar(const char *dir, const char *packname,
			struct dedup_entry *entries, size_t nr)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned char sum[SHA256_LEN], hdr[SDX_HEADER] = SDX_MAGIC;
	char *path;
	int ret;

	if (nr)
		qsort(entries, nr, sizeof(*entries), cmp_key);
	hdr[7] = SDX_VERSION;
	hdr[8] = nr >> 24;
	hdr[9] = nr >> 16;
	hdr[10] = nr >> 8;
	hdr[11] = nr;
	strbuf_add(&sb, hdr, SDX_HEADER);
	strbuf_add(&sb, entries, nr * sizeof(*entries));
	sha256(sb.buf, sb.len, sum);
	strbuf_add(&sb, sum, SHA256_LEN);
	path = xasprintf("%s/%s.sdx", dir, packname);
	ret = write_file_durable(path, sb.buf, sb.len, 0400);
	free(path);
	strbuf_release(&sb);
	return ret;
}

int dedup_read_sidecar(const char *path, struct dedup_entry **out, size_t *nr)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned char sum[SHA256_LEN];
	const unsigned char *p;
	size_t n;

	*out = NULL;
	*nr = 0;
	if (strbuf_read_file(&sb, path) < 0) {
		strbuf_release(&sb);
		return error("cannot read '%s': %s", path, strerror(errno));
	}
	p = (const unsigned char *)sb.buf;
	if (sb.len < SDX_HEADER + SHA256_LEN || memcmp(p, SDX_MAGIC, 4) ||
	    p[4] || p[5] || p[6] || p[7] != SDX_VERSION)
		goto corrupt;
	n = (size_t)p[8] << 24 | (size_t)p[9] << 16 | (size_t)p[10] << 8 | p[11];
	if (sb.len != SDX_HEADER + n * sizeof(struct dedup_entry) + SHA256_LEN)
		goto corrupt;
	sha256(p, sb.len - SHA256_LEN, sum);
	if (memcmp(sum, p + sb.len - SHA256_LEN, SHA256_LEN))
		goto corrupt;
	*out = xmalloc(n * sizeof(**out));
	memcpy(*out, p + SDX_HEADER, n * sizeof(**out));
	*nr = n;
	strbuf_release(&sb);
	return 0;
corrupt:
	strbuf_release(&sb);
	return ERR_CORRUPT;
}

static int load(struct dedup **out, const char *dir, const char *pack_dir, int reverse);

int dedup_load(struct dedup **out, const char *dir, const char *pack_dir)
{
	return load(out, dir, pack_dir, 0);
}

int dedup_load_reverse(struct dedup **out, const char *dir, const char *pack_dir)
{
	return load(out, dir, pack_dir, 1);
}

static int load(struct dedup **out, const char *dir, const char *pack_dir, int reverse)
{
	struct dedup *d = xcalloc(1, sizeof(*d));
	DIR *dh;
	struct dirent *de;

	*out = d;
	if (!dir)
		return 0;
	dh = opendir(dir);
	if (!dh)
		return errno == ENOENT ? 0 : error("cannot open '%s': %s", dir, strerror(errno));
	/* Size the table once from the sidecars' sizes: growing it step by
	 * step would hold the old and the new table at once, 1.5 times the
	 * memory, at the end. */
	{
		size_t total = 0;
		struct stat st;

		while ((de = readdir(dh))) {
			char *path = xasprintf("%s/%s", dir, de->d_name);

			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > SDX_HEADER + SHA256_LEN)
				total += (st.st_size - SDX_HEADER - SHA256_LEN) / sizeof(struct dedup_entry);
			free(path);
		}
		if (total)
			resize(d, total);
		rewinddir(dh);
	}
	while ((de = readdir(dh))) {
		size_t len = strlen(de->d_name), n, i;
		struct dedup_entry *e;
		char *path;

		if (len < 5 || strcmp(de->d_name + len - 4, ".sdx"))
			continue;
		path = xasprintf("%s/%.*s.idx", pack_dir, (int)(len - 4), de->d_name);
		if (access(path, F_OK) < 0) {
			free(path);
			continue;
		}
		free(path);
		path = xasprintf("%s/%s", dir, de->d_name);
		if (dedup_read_sidecar(path, &e, &n) == ERR_CORRUPT)
			warning("dedup index '%s' is damaged and ignored; run 'backup check --repair-index'", path);
		for (i = 0; i < n; i++) {
			if (reverse) {
				unsigned char key[SHA256_LEN] = { 0 };

				memcpy(key, e[i].oid, SHA1_LEN);
				dedup_insert(d, key, e[i].key);
			} else {
				dedup_insert(d, e[i].key, e[i].oid);
			}
		}
		free(e);
		free(path);
	}
	closedir(dh);
	return 0;
}
