#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "packidx.h"
#include "strbuf.h"
#include "usage.h"

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int packidx_read(struct packidx *out, const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	memset(out, 0, sizeof(*out));
	if (strbuf_read_file(&sb, path) < 0) {
		strbuf_release(&sb);
		return -1;
	}
	ret = packidx_parse(out, sb.buf, sb.len);
	strbuf_release(&sb);
	return ret;
}

int packidx_parse(struct packidx *out, const void *buf, size_t len)
{
	const unsigned char *p, *crc, *off, *large;
	unsigned char sum[SHA1_LEN];
	struct sha1_ctx c;
	size_t n, i, nlarge = 0, need;
	int ret = ERR_CORRUPT;

	memset(out, 0, sizeof(*out));
	p = buf;
	if (len < 8 + 1024 + 2 * SHA1_LEN || memcmp(p, "\377tOc\0\0\0\2", 8))
		goto out;
	sha1_init(&c);
	sha1_update(&c, p, len - SHA1_LEN);
	sha1_final(&c, sum);
	if (memcmp(sum, p + len - SHA1_LEN, SHA1_LEN))
		goto out;
	for (i = 1; i < 256; i++)
		if (be32(p + 8 + 4 * i) < be32(p + 8 + 4 * (i - 1)))
			goto out;
	n = be32(p + 8 + 1020);
	need = 8 + 1024 + n * (SHA1_LEN + 8) + 2 * SHA1_LEN;
	if (n > len / SHA1_LEN || len < need)
		goto out;
	crc = p + 8 + 1024 + n * SHA1_LEN;
	off = crc + 4 * n;
	large = off + 4 * n;
	out->nr = n;
	out->oids = xmalloc(n * SHA1_LEN + 1);
	out->crc = xcalloc(n, sizeof(*out->crc));
	out->offset = xcalloc(n, sizeof(*out->offset));
	memcpy(out->oids, p + 8 + 1024, n * SHA1_LEN);
	for (i = 0; i < n; i++) {
		uint32_t o = be32(off + 4 * i);

		out->crc[i] = be32(crc + 4 * i);
		if (o & 0x80000000u) {
			size_t k = o & 0x7fffffffu;

			if (large + 8 * (k + 1) > p + len - 2 * SHA1_LEN)
				goto bad;
			out->offset[i] = (uint64_t)be32(large + 8 * k) << 32 | be32(large + 8 * k + 4);
			nlarge++;
		} else {
			out->offset[i] = o;
		}
		if (i && memcmp(out->oids + (i - 1) * SHA1_LEN, out->oids + i * SHA1_LEN, SHA1_LEN) >= 0)
			goto bad;
	}
	if (len != need + 8 * nlarge)
		goto bad;
	memcpy(out->pack_sum, p + len - 2 * SHA1_LEN, SHA1_LEN);
	ret = 0;
	goto out;
bad:
	packidx_release(out);
out:
	return ret;
}

void packidx_release(struct packidx *idx)
{
	free(idx->oids);
	free(idx->crc);
	free(idx->offset);
	memset(idx, 0, sizeof(*idx));
}

ssize_t packidx_find(const struct packidx *idx, const unsigned char oid[SHA1_LEN])
{
	size_t lo = 0, hi = idx->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(idx->oids + mid * SHA1_LEN, oid, SHA1_LEN);

		if (!c)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}
