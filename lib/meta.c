#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "usage.h"

#define META_MAGIC "BKM"
/* A bound on field counts so a damaged blob cannot ask for huge arrays. */
#define META_MAX_ITEMS (1u << 24)

static void add_bytes(struct strbuf *sb, const char *p, size_t len)
{
	strbuf_add_varint(sb, len);
	strbuf_add(sb, p, len);
}

static void add_str(struct strbuf *sb, const char *s)
{
	add_bytes(sb, s ? s : "", s ? strlen(s) : 0);
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void add_time(struct strbuf *sb, const struct timespec *t)
{
	strbuf_add_varint(sb, zigzag(t->tv_sec));
	strbuf_add_varint(sb, t->tv_nsec);
}

void meta_header(struct strbuf *out)
{
	strbuf_add(out, META_MAGIC, 3);
	strbuf_addch(out, META_VERSION);
}

void meta_encode(struct strbuf *out, const struct meta *m)
{
	struct strbuf r = STRBUF_INIT;
	size_t i;

	add_str(&r, m->name);
	strbuf_add_varint(&r, m->mode);
	strbuf_add_varint(&r, m->uid);
	strbuf_add_varint(&r, m->gid);
	add_str(&r, m->uname);
	add_str(&r, m->gname);
	strbuf_add_varint(&r, m->size);
	strbuf_add_varint(&r, m->ino);
	strbuf_add_varint(&r, m->dev);
	strbuf_add_varint(&r, m->nlink);
	strbuf_add_varint(&r, m->rdev);
	add_time(&r, &m->atime);
	add_time(&r, &m->mtime);
	add_time(&r, &m->ctime);
	add_str(&r, m->link);
	strbuf_add_varint(&r, m->nxattrs);
	for (i = 0; i < m->nxattrs; i++) {
		add_str(&r, m->xattrs[i].name);
		add_bytes(&r, m->xattrs[i].value, m->xattrs[i].len);
	}
	strbuf_add_varint(&r, m->nextents);
	for (i = 0; i < 2 * m->nextents; i++)
		strbuf_add_varint(&r, m->extents[i]);
	strbuf_add_varint(out, r.len);
	strbuf_add(out, r.buf, r.len);
	strbuf_release(&r);
}

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static uint64_t get_varint(struct reader *rd)
{
	uint64_t v = 0;
	int shift = 0;

	while (rd->p < rd->end && shift < 64) {
		unsigned char c = *rd->p++;

		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
		shift += 7;
	}
	rd->bad = 1;
	return 0;
}

static char *get_bytes(struct reader *rd, size_t *len)
{
	uint64_t n = get_varint(rd);
	char *s;

	if (rd->bad || n > (uint64_t)(rd->end - rd->p)) {
		rd->bad = 1;
		return NULL;
	}
	s = xmalloc(n + 1);
	memcpy(s, rd->p, n);
	s[n] = '\0';
	rd->p += n;
	if (len)
		*len = n;
	return s;
}

/* A string field: NUL bytes inside are damage. */
static char *get_str(struct reader *rd)
{
	size_t len;
	char *s = get_bytes(rd, &len);

	if (s && strlen(s) != len)
		rd->bad = 1;
	return s;
}

static void get_time(struct reader *rd, struct timespec *t)
{
	t->tv_sec = unzigzag(get_varint(rd));
	t->tv_nsec = get_varint(rd);
	if (t->tv_nsec >= 1000000000)
		rd->bad = 1;
}

static int decode_record(struct reader *rd, struct meta *m)
{
	uint64_t n, i;

	memset(m, 0, sizeof(*m));
	m->name = get_str(rd);
	m->mode = get_varint(rd);
	m->uid = get_varint(rd);
	m->gid = get_varint(rd);
	m->uname = get_str(rd);
	m->gname = get_str(rd);
	m->size = get_varint(rd);
	m->ino = get_varint(rd);
	m->dev = get_varint(rd);
	m->nlink = get_varint(rd);
	m->rdev = get_varint(rd);
	get_time(rd, &m->atime);
	get_time(rd, &m->mtime);
	get_time(rd, &m->ctime);
	m->link = get_str(rd);
	n = get_varint(rd);
	if (rd->bad || n > META_MAX_ITEMS || n > (uint64_t)(rd->end - rd->p))
		return -1;
	m->xattrs = xcalloc(n, sizeof(*m->xattrs));
	m->nxattrs = n;
	for (i = 0; i < n && !rd->bad; i++) {
		m->xattrs[i].name = get_str(rd);
		m->xattrs[i].value = get_bytes(rd, &m->xattrs[i].len);
	}
	n = get_varint(rd);
	if (rd->bad || n > META_MAX_ITEMS || 2 * n > (uint64_t)(rd->end - rd->p))
		return -1;
	m->extents = xcalloc(2 * n, sizeof(*m->extents));
	m->nextents = n;
	for (i = 0; i < 2 * n; i++)
		m->extents[i] = get_varint(rd);
	if (rd->bad || !m->name || !*m->name || strchr(m->name, '/') || !strcmp(m->name, ".."))
		return -1;
	return 0;
}

int meta_decode(const char *buf, size_t len, struct meta **out, size_t *nr)
{
	struct reader rd = { (const unsigned char *)buf, (const unsigned char *)buf + len, 0 };
	struct meta *m = NULL;
	size_t n = 0, alloc = 0;

	*out = NULL;
	*nr = 0;
	if (len < 4 || memcmp(buf, META_MAGIC, 3) || buf[3] != META_VERSION)
		return ERR_CORRUPT;
	rd.p += 4;
	while (rd.p < rd.end) {
		uint64_t rlen = get_varint(&rd);
		struct reader sub;

		if (rd.bad || rlen > (uint64_t)(rd.end - rd.p))
			goto bad;
		sub.p = rd.p;
		sub.end = rd.p + rlen;
		sub.bad = 0;
		rd.p += rlen;
		if (n == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			m = xrealloc(m, alloc * sizeof(*m));
		}
		if (decode_record(&sub, &m[n++]) < 0)
			goto bad;
		/* Records after "." are strictly sorted: no duplicate names. */
		if (n == 1 ? strcmp(m[0].name, ".") :
		    (n > 2 && strcmp(m[n - 2].name, m[n - 1].name) >= 0) || !strcmp(m[n - 1].name, "."))
			goto bad;
	}
	if (!n)
		goto bad;
	*out = m;
	*nr = n;
	return 0;
bad:
	meta_free_array(m, n);
	return ERR_CORRUPT;
}

void meta_clear(struct meta *m)
{
	size_t i;

	free(m->name);
	free(m->uname);
	free(m->gname);
	free(m->link);
	for (i = 0; i < m->nxattrs; i++) {
		free(m->xattrs[i].name);
		free(m->xattrs[i].value);
	}
	free(m->xattrs);
	free(m->extents);
	memset(m, 0, sizeof(*m));
}

void meta_free_array(struct meta *m, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		meta_clear(&m[i]);
	free(m);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void meta_copy(struct meta *dst, const struct meta *src)
{
	size_t i;

	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->uname = dup_or_null(src->uname);
	dst->gname = dup_or_null(src->gname);
	dst->link = dup_or_null(src->link);
	dst->xattrs = xcalloc(src->nxattrs, sizeof(*dst->xattrs));
	for (i = 0; i < src->nxattrs; i++) {
		dst->xattrs[i].name = xstrdup(src->xattrs[i].name);
		dst->xattrs[i].value = xmalloc(src->xattrs[i].len + 1);
		memcpy(dst->xattrs[i].value, src->xattrs[i].value, src->xattrs[i].len);
		dst->xattrs[i].len = src->xattrs[i].len;
	}
	dst->extents = xcalloc(2 * src->nextents, sizeof(*dst->extents));
	if (src->nextents)
		memcpy(dst->extents, src->extents, 2 * src->nextents * sizeof(*dst->extents));
}

void meta_from_stat(struct meta *m, const struct stat *st)
{
	m->mode = st->st_mode;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
	m->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	m->ino = st->st_ino;
	m->dev = st->st_dev;
	m->nlink = st->st_nlink;
	m->rdev = st->st_rdev;
	m->atime = st->st_atim;
	m->mtime = st->st_mtim;
	m->ctime = st->st_ctim;
}
