#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "fsutil.h"
#include "pack.h"
#include "strbuf.h"
#include "usage.h"

#define WRITE_BUFFER ((size_t)1 << 20)

struct pack_writer {
	char *dir;
	size_t max_bytes;
	int fd;				/* the temporary pack, or -1 */
	char *tmp;
	uint64_t size;			/* bytes in the pack so far, header included */
	struct strbuf body;		/* objects not yet written to fd */
	struct pack_entry *entries;
	size_t nr, alloc;
	int failed;			/* a write failed: the pack is lost */
};

int pack_writer_new(struct pack_writer **out, const char *pack_dir, size_t max_bytes)
{
	struct pack_writer *pw = xcalloc(1, sizeof(*pw));

	pw->dir = xstrdup(pack_dir);
	pw->max_bytes = max_bytes;
	pw->fd = -1;
	strbuf_init(&pw->body, 0);
	*out = pw;
	return 0;
}

/* Empties the writer; the temporary pack is removed unless it was renamed
 * into place (its name may then be another process's mkstemp already). */
static void reset(struct pack_writer *pw, int remove_tmp)
{
	if (pw->fd >= 0) {
		close(pw->fd);
		if (remove_tmp)
			unlink(pw->tmp);
	}
	pw->fd = -1;
	free(pw->tmp);
	pw->tmp = NULL;
	pw->size = 0;
	pw->nr = 0;
	strbuf_reset(&pw->body);
}

void pack_writer_free(struct pack_writer *pw)
{
	if (!pw)
		return;
	reset(pw, 1);
	strbuf_release(&pw->body);
	free(pw->entries);
	free(pw->dir);
	free(pw);
}

size_t pack_entry_header(unsigned char *out, enum pack_type type, uint64_t size)
{
	size_t n = 0;
	unsigned char c = (type << 4) | (size & 15);

	size >>= 4;
	while (size) {
		out[n++] = c | 0x80;
		c = size & 0x7f;
		size >>= 7;
	}
	out[n++] = c;
	return n;
}

/* A zlib stream of stored blocks: no compression, as git's format demands. */
static void add_stored_zlib(struct strbuf *sb, const unsigned char *data, size_t len)
{
	uLong adler = adler32(0L, Z_NULL, 0);
	size_t off = 0;

	strbuf_add(sb, "\x78\x01", 2);
	do {
		size_t n = len - off > 65535 ? 65535 : len - off;
		unsigned char hdr[5];

		hdr[0] = off + n == len;	/* BFINAL, BTYPE=00 */
		hdr[1] = n & 0xff;
		hdr[2] = n >> 8;
		hdr[3] = ~n & 0xff;
		hdr[4] = (~n >> 8) & 0xff;
		strbuf_add(sb, hdr, 5);
		strbuf_add(sb, data + off, n);
		off += n;
	} while (off < len);
	/* zlib's adler32 takes a uInt length: feed it in pieces. */
	for (off = 0; off < len;) {
		size_t n = len - off > (1u << 30) ? (1u << 30) : len - off;
		adler = adler32(adler, data + off, (uInt)n);
		off += n;
	}
	unsigned char tail[4] = { adler >> 24, adler >> 16, adler >> 8, adler };
	strbuf_add(sb, tail, 4);
}

static void add_deflated(struct strbuf *sb, const unsigned char *data, size_t len)
{
	uLongf bound = compressBound(len);

	strbuf_grow(sb, bound);
	if (compress2((Bytef *)sb->buf + sb->len, &bound, data, len, 6) != Z_OK)
		die("zlib compression failed");
	strbuf_setlen(sb, sb->len + bound);
}

/* Opens the temporary pack with room for the header, which is written last. */
static int start(struct pack_writer *pw)
{
	static const char zero[12];

	if (pw->fd >= 0)
		return 0;
	pw->tmp = xasprintf("%s/tmp_pack_XXXXXX", pw->dir);
	pw->fd = mkstemp(pw->tmp);
	if (pw->fd < 0) {
		error("cannot create a pack in '%s': %s", pw->dir, strerror(errno));
		free(pw->tmp);
		pw->tmp = NULL;
		return -1;
	}
	if (write_all(pw->fd, zero, sizeof(zero)) < 0) {
		error("cannot write '%s': %s", pw->tmp, strerror(errno));
		reset(pw, 1);
		return -1;
	}
	pw->size = sizeof(zero);
	return 0;
}

static int drain_body(struct pack_writer *pw)
{
	if (pw->body.len && write_all(pw->fd, pw->body.buf, pw->body.len) < 0) {
		error("cannot write '%s': %s", pw->tmp, strerror(errno));
		pw->failed = 1;
		return -1;
	}
	strbuf_reset(&pw->body);
	return 0;
}

static struct pack_entry *new_entry(struct pack_writer *pw, const unsigned char *oid)
{
	struct pack_entry *e;

	if (pw->nr == pw->alloc) {
		pw->alloc = pw->alloc ? pw->alloc * 2 : 1024;
		pw->entries = xrealloc(pw->entries, pw->alloc * sizeof(*pw->entries));
	}
	e = &pw->entries[pw->nr++];
	memcpy(e->oid, oid, SHA1_LEN);
	e->offset = pw->size;
	return e;
}

/*
 * A large blob goes from the caller's buffer to the pack with writev(), its
 * stored-block headers between the pieces: no copy into the write buffer,
 * which therefore never grows past WRITE_BUFFER and one small object.
 */
static int add_large_blob(struct pack_writer *pw, struct pack_entry *e, const unsigned char *data, size_t len)
{
	size_t nblocks = (len + 65534) / 65535, i, n = 0, total = 0;
	unsigned char head[16 + 2], tail[4], (*bh)[5] = xmalloc(nblocks * 5);
	struct iovec *iov = xmalloc((2 * nblocks + 2) * sizeof(*iov));
	uLong adler = adler32(0L, Z_NULL, 0), crc = crc32_z(0L, Z_NULL, 0);
	size_t hlen = pack_entry_header(head, PACK_BLOB, len);
	int ret;

	head[hlen++] = 0x78;
	head[hlen++] = 0x01;
	iov[n++] = (struct iovec){ head, hlen };
	crc = crc32_z(crc, head, hlen);
	for (i = 0; i < nblocks; i++) {
		size_t off = i * 65535, k = len - off > 65535 ? 65535 : len - off;

		bh[i][0] = i + 1 == nblocks;
		bh[i][1] = k & 0xff;
		bh[i][2] = k >> 8;
		bh[i][3] = ~k & 0xff;
		bh[i][4] = (~k >> 8) & 0xff;
		iov[n++] = (struct iovec){ bh[i], 5 };
		iov[n++] = (struct iovec){ (void *)(data + off), k };
		crc = crc32_z(crc, bh[i], 5);
		crc = crc32_z(crc, data + off, k);
		adler = adler32_z(adler, data + off, k);
		total += 5 + k;
	}
	tail[0] = adler >> 24;
	tail[1] = adler >> 16;
	tail[2] = adler >> 8;
	tail[3] = adler;
	iov[n++] = (struct iovec){ tail, 4 };
	e->crc = crc32_z(crc, tail, 4);
	ret = writev_all(pw->fd, iov, n);
	free(iov);
	free(bh);
	if (ret < 0) {
		error("cannot write '%s': %s", pw->tmp, strerror(errno));
		pw->failed = 1;
		return -1;
	}
	pw->size += hlen + total + 4;
	return 0;
}

int pack_writer_add(struct pack_writer *pw, enum pack_type type,
		    const unsigned char oid[SHA1_LEN], const void *data, size_t len)
{
	unsigned char hdr[16];
	size_t begin, hlen = pack_entry_header(hdr, type, len);
	struct pack_entry *e;

	if (pw->failed || start(pw) < 0)
		return -1;
	e = new_entry(pw, oid);
	if (type == PACK_BLOB && len >= WRITE_BUFFER / 4)
		return drain_body(pw) < 0 ? -1 : add_large_blob(pw, e, data, len);
	begin = pw->body.len;
	strbuf_add(&pw->body, hdr, hlen);
	if (type == PACK_BLOB)
		add_stored_zlib(&pw->body, data, len);
	else
		add_deflated(&pw->body, data, len);
	e->crc = crc32_z(0L, (const Bytef *)pw->body.buf + begin, pw->body.len - begin);
	pw->size += pw->body.len - begin;
	return pw->body.len >= WRITE_BUFFER ? drain_body(pw) : 0;
}

int pack_writer_add_raw(struct pack_writer *pw, const unsigned char oid[SHA1_LEN],
			const void *raw, size_t len, uint32_t crc)
{
	struct pack_entry *e;

	if (pw->failed || start(pw) < 0)
		return -1;
	e = new_entry(pw, oid);
	e->crc = crc;
	strbuf_add(&pw->body, raw, len);
	pw->size += len;
	return pw->body.len >= WRITE_BUFFER ? drain_body(pw) : 0;
}

size_t pack_writer_count(const struct pack_writer *pw)
{
	return pw->nr;
}

size_t pack_writer_bytes(const struct pack_writer *pw)
{
	return pw->size;
}

int pack_writer_full(const struct pack_writer *pw)
{
	return pw->size >= pw->max_bytes;
}

static int cmp_entry(const void *a, const void *b)
{
	return memcmp(((const struct pack_entry *)a)->oid, ((const struct pack_entry *)b)->oid, SHA1_LEN);
}

static void put_be32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
	strbuf_add(sb, b, 4);
}

static void build_idx(struct strbuf *idx, struct pack_entry *e, size_t nr,
		      const unsigned char pack_sum[SHA1_LEN])
{
	unsigned char sum[SHA1_LEN];
	struct sha1_ctx c;
	size_t i, nlarge = 0;
	uint32_t fan[256] = { 0 };

	if (nr)
		qsort(e, nr, sizeof(*e), cmp_entry);
	for (i = 0; i < nr; i++)
		fan[e[i].oid[0]]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	strbuf_add(idx, "\377tOc", 4);
	put_be32(idx, 2);
	for (i = 0; i < 256; i++)
		put_be32(idx, fan[i]);
	for (i = 0; i < nr; i++)
		strbuf_add(idx, e[i].oid, SHA1_LEN);
	for (i = 0; i < nr; i++)
		put_be32(idx, e[i].crc);
	for (i = 0; i < nr; i++) {
		if (e[i].offset < 0x80000000u)
			put_be32(idx, (uint32_t)e[i].offset);
		else
			put_be32(idx, 0x80000000u | (uint32_t)nlarge++);
	}
	for (i = 0; i < nr; i++)
		if (e[i].offset >= 0x80000000u) {
			put_be32(idx, e[i].offset >> 32);
			put_be32(idx, (uint32_t)e[i].offset);
		}
	strbuf_add(idx, pack_sum, SHA1_LEN);
	sha1_init(&c);
	sha1_update(&c, idx->buf, idx->len);
	sha1_final(&c, sum);
	strbuf_add(idx, sum, SHA1_LEN);
}

/* Writes data under a temporary name in dir and fsyncs it; returns the name. */
static char *write_temp(const char *dir, const char *what, const void *data, size_t len)
{
	char *tmp = xasprintf("%s/tmp_%s_XXXXXX", dir, what);
	int fd = mkstemp(tmp);

	if (fd < 0) {
		error("cannot create a temporary %s in '%s': %s", what, dir, strerror(errno));
		free(tmp);
		return NULL;
	}
	if (fchmod(fd, 0400) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		error("cannot write '%s': %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	close(fd);
	return tmp;
}

/* Writes the header, then hashes the pack as written (from the page cache)
 * for its trailer: the object count is only known now. */
static int finish_pack(struct pack_writer *pw, unsigned char sum[SHA1_LEN])
{
	unsigned char hdr[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2 };
	struct sha1_ctx c;
	char *buf = xmalloc(WRITE_BUFFER);
	uint64_t off = 0;

	hdr[8] = pw->nr >> 24;
	hdr[9] = pw->nr >> 16;
	hdr[10] = pw->nr >> 8;
	hdr[11] = pw->nr;
	if (drain_body(pw) < 0 || pwrite(pw->fd, hdr, 12, 0) != 12)
		goto fail;
	sha1_init(&c);
	while (off < pw->size) {
		size_t want = pw->size - off < WRITE_BUFFER ? pw->size - off : WRITE_BUFFER;
		ssize_t n = pread(pw->fd, buf, want, off);

		if (n <= 0) {
			sha1_final(&c, sum);
			goto fail;
		}
		sha1_update(&c, buf, n);
		off += n;
	}
	sha1_final(&c, sum);
	free(buf);
	if (pwrite(pw->fd, sum, SHA1_LEN, pw->size) != SHA1_LEN || fchmod(pw->fd, 0400) < 0 ||
	    fsync(pw->fd) < 0)
		return error("cannot write '%s': %s", pw->tmp, strerror(errno));
	return 0;
fail:
	free(buf);
	return error("cannot write '%s': %s", pw->tmp, strerror(errno ? errno : EIO));
}

int pack_writer_flush(struct pack_writer *pw, char **name_out)
{
	unsigned char sum[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1];
	struct strbuf idx = STRBUF_INIT;
	char *tmp_idx = NULL, *pack = NULL, *idxname = NULL;
	int ret = -1;

	if (name_out)
		*name_out = NULL;
	if (!pw->nr)
		return 0;
	if (pw->failed || finish_pack(pw, sum) < 0)
		goto out;
	hex_encode(hex, sum, SHA1_LEN);
	build_idx(&idx, pw->entries, pw->nr, sum);
	tmp_idx = write_temp(pw->dir, "idx", idx.buf, idx.len);
	if (!tmp_idx)
		goto out;
	pack = xasprintf("%s/pack-%s.pack", pw->dir, hex);
	idxname = xasprintf("%s/pack-%s.idx", pw->dir, hex);
	if (rename(pw->tmp, pack) < 0) {
		error("cannot rename '%s' to '%s': %s", pw->tmp, pack, strerror(errno));
		goto out;
	}
	if (fsync_dir(pw->dir) < 0) {
		error("cannot sync '%s': %s", pw->dir, strerror(errno));
		unlink(pack);
		goto out;
	}
	if (rename(tmp_idx, idxname) < 0) {
		error("cannot rename '%s' to '%s': %s", tmp_idx, idxname, strerror(errno));
		unlink(pack);
		goto out;
	}
	if (fsync_dir(pw->dir) < 0) {
		error("cannot sync '%s': %s", pw->dir, strerror(errno));
		goto out;
	}
	if (name_out)
		*name_out = xasprintf("pack-%s", hex);
	reset(pw, 0);
	ret = 0;
out:
	if (ret < 0) {
		/* The objects are lost with the temporary pack: nothing may refer to them. */
		pw->failed = 1;
		if (tmp_idx)
			unlink(tmp_idx);
	}
	strbuf_release(&idx);
	free(tmp_idx);
	free(pack);
	free(idxname);
	return ret;
}
