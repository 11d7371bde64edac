#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "packidx.h"
#include "packread.h"
#include "store.h"
#include "usage.h"

#define STORED_BLOCK 65535
/* The longest zstd frame header (ZSTD_FRAMEHEADERSIZE_MAX, which zstd.h
 * gives only to static linking). */
#define FRAME_HEADER_MAX 18
#define FIRST_READ 4096		/* header, zlib header, first block header, zstd frame header */

/* A pack is opened when first read: a restore reads a few of many. */
struct pack {
	struct packidx idx;
	char *path;
	int fd;			/* -1 until opened; then read with __atomic_load_n */
	uint64_t size;		/* set before fd */
};

struct packset {
	struct repo *repo;
	struct pack *packs;
	size_t nr;
	pthread_mutex_t open_lock;	/* opening a pack */
	pthread_mutex_t git_lock;	/* libgit2's reader, for objects not ours */
};

void blob_reader_release(struct blob_reader *br)
{
	strbuf_release(&br->raw);
	strbuf_release(&br->frame);
	ZSTD_freeDCtx(br->dctx);
	br->dctx = NULL;
}

static void pack_close(struct pack *p)
{
	packidx_release(&p->idx);
	if (p->fd >= 0)
		close(p->fd);
	free(p->path);
}

/* Adds the pack of index file idx_name; one whose index is damaged is left to libgit2. */
static void add_pack(struct packset *ps, const char *idx_name)
{
	char *idx_path = xasprintf("%s/%s", ps->repo->pack_dir, idx_name);
	struct pack p = { .fd = -1 };

	if (packidx_read(&p.idx, idx_path) == 0) {
		p.path = xasprintf("%.*s.pack", (int)(strlen(idx_path) - 4), idx_path);
		ps->packs = xrealloc(ps->packs, (ps->nr + 1) * sizeof(*ps->packs));
		ps->packs[ps->nr++] = p;
	} else {
		pack_close(&p);
	}
	free(idx_path);
}

/* The pack's descriptor, opened on first use; -1 when it cannot be (libgit2's turn). */
static int pack_fd(struct packset *ps, struct pack *p)
{
	struct stat st;
	int fd = __atomic_load_n(&p->fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		return fd;
	pthread_mutex_lock(&ps->open_lock);
	if (p->fd < 0) {
		fd = open(p->path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 12 + SHA1_LEN) {
			p->size = st.st_size;
			__atomic_store_n(&p->fd, fd, __ATOMIC_RELEASE);
		} else if (fd >= 0) {
			close(fd);
		}
	}
	fd = p->fd;
	pthread_mutex_unlock(&ps->open_lock);
	return fd;
}

int packset_open(struct packset **out, struct repo *r)
{
	struct packset *ps = xcalloc(1, sizeof(*ps));
	DIR *d = opendir(r->pack_dir);
	struct dirent *de;

	ps->repo = r;
	pthread_mutex_init(&ps->open_lock, NULL);
	pthread_mutex_init(&ps->git_lock, NULL);
	if (!d) {
		error("cannot read '%s': %s", r->pack_dir, strerror(errno));
		packset_free(ps);
		return -1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 9 && !strncmp(de->d_name, "pack-", 5) && !strcmp(de->d_name + len - 4, ".idx"))
			add_pack(ps, de->d_name);
	}
	closedir(d);
	*out = ps;
	return 0;
}

void packset_free(struct packset *ps)
{
	size_t i;

	if (!ps)
		return;
	for (i = 0; i < ps->nr; i++)
		pack_close(&ps->packs[i]);
	free(ps->packs);
	pthread_mutex_destroy(&ps->open_lock);
	pthread_mutex_destroy(&ps->git_lock);
	free(ps);
}

static int read_at(int fd, struct strbuf *sb, size_t len, uint64_t off)
{
	strbuf_grow(sb, len);
	while (sb->len < len) {
		ssize_t n = pread(fd, sb->buf + sb->len, len - sb->len, off + sb->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		strbuf_setlen(sb, sb->len + n);
	}
	return 0;
}

/* The bytes a stored-block zlib stream of len payload bytes takes. */
static uint64_t stored_len(uint64_t len)
{
	uint64_t blocks = len ? (len + STORED_BLOCK - 1) / STORED_BLOCK : 1;

	return 2 + 5 * blocks + len + 4;
}

/*
 * Reads the start of blob oid's entry into br->raw: at least the entry
 * header, the zlib header and want bytes of the payload's first block.
 * Returns 1 with *hlen (header bytes) and *len (payload bytes) when the
 * object is a blob of ours, 0 when it is not ours to read (libgit2's turn),
 * or ERR_CORRUPT.
 */
static int entry_start(struct packset *ps, struct blob_reader *br, const unsigned char *oid,
		       const struct pack **pp, uint64_t *off, size_t *hlen, uint64_t *len)
{
	struct pack *p = NULL;
	const unsigned char *h;
	uint64_t size, avail;
	size_t i, n, shift;
	ssize_t pos = -1;

	for (i = 0; i < ps->nr && pos < 0; i++) {
		pos = packidx_find(&ps->packs[i].idx, oid);
		p = &ps->packs[i];
	}
	if (pos < 0 || pack_fd(ps, p) < 0)
		return 0;
	*pp = p;
	*off = p->idx.offset[pos];
	if (*off < 12 || *off >= p->size - SHA1_LEN)
		return ERR_CORRUPT;
	avail = p->size - SHA1_LEN - *off;
	strbuf_reset(&br->raw);
	if (read_at(p->fd, &br->raw, avail < FIRST_READ ? avail : FIRST_READ, *off) < 0)
		return ERR_CORRUPT;
	h = (const unsigned char *)br->raw.buf;
	n = br->raw.len;
	if (((h[0] >> 4) & 7) != 3)	/* not a plain blob: a delta, perhaps */
		return 0;
	size = h[0] & 15;
	for (i = 1, shift = 4; h[i - 1] & 0x80; i++, shift += 7)
		if (i >= n || shift > 57)
			return ERR_CORRUPT;
		else
			size |= (uint64_t)(h[i] & 0x7f) << shift;
	if (size > BLOB_MAX)
		return ERR_CORRUPT;
	/* Ours: zlib's header for "no compression", then stored blocks. */
	if (i + 2 > n || h[i] != 0x78 || h[i + 1] != 0x01 || i + stored_len(size) > avail)
		return 0;
	*hlen = i;
	*len = size;
	return 1;
}

/* Whether b is the stored-block header our writer puts before the next of left payload bytes. */
static int block_ok(const unsigned char *b, uint64_t left)
{
	size_t n = left > STORED_BLOCK ? STORED_BLOCK : left;

	return b[0] == (left == n) && b[1] == (n & 0xff) && b[2] == (n >> 8) &&
	       b[3] == (~n & 0xff) && b[4] == ((~n >> 8) & 0xff);
}

/*
 * Removes the zlib framing of a stored-block stream at br->raw + hlen in
 * place: afterwards br->raw holds the payload from its start. Returns 0, or
 * 1 when a block header is not what our writer writes (not ours).
 */
static int unframe(struct blob_reader *br, size_t hlen, uint64_t len)
{
	unsigned char *dst = (unsigned char *)br->raw.buf;
	const unsigned char *src = dst + hlen + 2;
	uint64_t left = len;

	do {
		size_t n = left > STORED_BLOCK ? STORED_BLOCK : left;

		if (!block_ok(src, left))
			return 1;
		memmove(dst, src + 5, n);
		dst += n;
		src += 5 + n;
		left -= n;
	} while (left);
	strbuf_setlen(&br->raw, len);
	return 0;
}

static int read_by_git(struct packset *ps, const unsigned char *oid, struct strbuf *out)
{
	int err;

	pthread_mutex_lock(&ps->git_lock);
	err = store_read_blob(ps->repo, oid, out);
	pthread_mutex_unlock(&ps->git_lock);
	return err;
}

int packset_read_blob(struct packset *ps, struct blob_reader *br,
		      const unsigned char oid[SHA1_LEN], struct strbuf *out)
{
	const struct pack *p;
	unsigned char got[SHA1_LEN];
	uint64_t off, len;
	size_t hlen;
	int ret = entry_start(ps, br, oid, &p, &off, &hlen, &len);

	if (ret <= 0)
		return ret ? ret : read_by_git(ps, oid, out);
	if (read_at(p->fd, &br->raw, hlen + stored_len(len), off) < 0)
		return ERR_CORRUPT;
	if (unframe(br, hlen, len))
		return read_by_git(ps, oid, out);
	object_id("blob", br->raw.buf, len, got);
	if (memcmp(got, oid, SHA1_LEN))
		return ERR_CORRUPT;
	if (!br->dctx && !(br->dctx = ZSTD_createDCtx()))
		die("out of memory");
	return blob_payload_decode(ps->repo, br->dctx, &br->frame, br->raw.buf, len, out);
}

int packset_blob_size(struct packset *ps, struct blob_reader *br,
		      const unsigned char oid[SHA1_LEN], uint64_t *size)
{
	const struct pack *p;
	struct strbuf plain = STRBUF_INIT;
	unsigned char peek[FRAME_HEADER_MAX];
	const unsigned char *frame;
	uint64_t off, len;
	unsigned long long n;
	size_t hlen;
	int ret = entry_start(ps, br, oid, &p, &off, &hlen, &len);

	if (ret == 1 && br->raw.len > hlen + 2 + 5 &&
	    block_ok((const unsigned char *)br->raw.buf + hlen + 2, len)) {
		/* The frame header begins the first stored block. */
		size_t have = br->raw.len - (hlen + 2 + 5);

		if (have > len)
			have = len;
		if (have > STORED_BLOCK)
			have = STORED_BLOCK;
		frame = (const unsigned char *)br->raw.buf + hlen + 2 + 5;
		if (ps->repo->version == REPO_FORMAT_ENCRYPTED) {
			/* The frame header, deciphered but not yet
			 * authenticated: the chunk's full read checks it. */
			if (!ps->repo->keys || have < BLOB_SEALED_OVERHEAD)
				return ERR_CORRUPT;
			have -= BLOB_SEALED_OVERHEAD;
			if (have > FRAME_HEADER_MAX)
				have = FRAME_HEADER_MAX;
			if (crypto_peek(peek, have, ps->repo->keys->sub[CRYPTO_BLOB], frame + SHA256_LEN,
					len - SHA256_LEN) < 0)
				return ERR_CORRUPT;
			frame = peek;
		}
		n = ZSTD_getFrameContentSize(frame, have);
		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > BLOB_MAX)
			return ERR_CORRUPT;
		*size = n;
		return 0;
	}
	if (ret < 0)
		return ret;
	ret = packset_read_blob(ps, br, oid, &plain);
	*size = plain.len;
	strbuf_release(&plain);
	return ret;
}
