#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"
#include "usage.h"

char strbuf_slopbuf[1];

void strbuf_init(struct strbuf *sb, size_t hint)
{
	sb->alloc = sb->len = 0;
	sb->buf = strbuf_slopbuf;
	if (hint)
		strbuf_grow(sb, hint);
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, 0);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p;

	strbuf_grow(sb, 0);
	p = sb->buf;
	if (len)
		*len = sb->len;
	strbuf_init(sb, 0);
	return p;
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t want = sb->len + extra + 1;

	if (want < sb->len)
		die("strbuf overflow");
	if (want <= sb->alloc)
		return;
	if (!sb->alloc)
		sb->buf = NULL;
	sb->alloc = want < 64 ? 64 : want;
	if (sb->alloc < want * 3 / 2)
		sb->alloc = want * 3 / 2;
	sb->buf = xrealloc(sb->buf, sb->alloc);
	if (!sb->len)
		sb->buf[0] = '\0';
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
	if (!sb->alloc)
		return;
	sb->len = len;
	sb->buf[len] = '\0';
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	if (!len)
		return;
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
	strbuf_grow(sb, 1);
	sb->buf[sb->len++] = (char)c;
	sb->buf[sb->len] = '\0';
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->alloc ? sb->alloc - sb->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vsnprintf failed");
	if (sb->alloc && (size_t)n < sb->alloc - sb->len) {
		sb->len += n;
		return;
	}
	strbuf_grow(sb, n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	va_end(ap);
	sb->len += n;
}

void strbuf_add_varint(struct strbuf *sb, uint64_t v)
{
	unsigned char tmp[10];
	int n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	strbuf_add(sb, tmp, n);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static int utf8_len(const unsigned char *s)
{
	int n, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		n = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

void strbuf_add_json(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	strbuf_addch(sb, '"');
	while (*p) {
		int n;

		switch (*p) {
		case '"': strbuf_addstr(sb, "\\\""); p++; continue;
		case '\\': strbuf_addstr(sb, "\\\\"); p++; continue;
		case '\n': strbuf_addstr(sb, "\\n"); p++; continue;
		case '\t': strbuf_addstr(sb, "\\t"); p++; continue;
		case '\r': strbuf_addstr(sb, "\\r"); p++; continue;
		}
		if (*p < 0x20) {
			strbuf_addf(sb, "\\u%04x", *p++);
			continue;
		}
		n = utf8_len(p);
		if (!n) {
			strbuf_addf(sb, "\\u%04x", *p++);
			continue;
		}
		strbuf_add(sb, p, n);
		p += n;
	}
	strbuf_addch(sb, '"');
}

/*
 * The length of the UTF-8 sequence at p that XML 1.0 allows as a
 * character, or 0: no overlong forms, surrogates, U+FFFE or U+FFFF.
 */
static int xml_char_len(const unsigned char *p)
{
	unsigned cp;
	int n, i;

	if (p[0] < 0x80)
		return p[0] >= 0x20 || p[0] == '\t' || p[0] == '\n' || p[0] == '\r';
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void strbuf_add_xml(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;

		switch (*p) {
		case '&': strbuf_addstr(sb, "&amp;"); p++; continue;
		case '<': strbuf_addstr(sb, "&lt;"); p++; continue;
		case '>': strbuf_addstr(sb, "&gt;"); p++; continue;
		case '"': strbuf_addstr(sb, "&quot;"); p++; continue;
		case '\'': strbuf_addstr(sb, "&apos;"); p++; continue;
		case '\n': strbuf_addstr(sb, "&#10;"); p++; continue;
		case '\r': strbuf_addstr(sb, "&#13;"); p++; continue;
		case '\t': strbuf_addstr(sb, "&#9;"); p++; continue;
		}
		n = xml_char_len(p);
		if (!n) {
			strbuf_addf(sb, "\\x%02x", *p++);
			continue;
		}
		strbuf_add(sb, p, n);
		p += n;
	}
}

int strbuf_read_file(struct strbuf *sb, const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		strbuf_add(sb, buf, n);
	}
	close(fd);
	return 0;
}
