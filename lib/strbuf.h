/*
 * strbuf.h — a growable byte buffer that is always NUL-terminated.
 *
 * Initialise with STRBUF_INIT; sb.buf is then a valid empty string. Every
 * function that adds to a buffer grows it as needed (dying on exhaustion), so
 * callers never check for allocation failure. strbuf_release() frees the
 * memory and leaves the buffer empty and reusable; strbuf_detach() hands the
 * memory to the caller.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	size_t alloc;
	size_t len;
	char *buf;
};

extern char strbuf_slopbuf[];
#define STRBUF_INIT { 0, 0, strbuf_slopbuf }

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_setlen(struct strbuf *sb, size_t len);
#define strbuf_reset(sb) strbuf_setlen(sb, 0)

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Little-endian base-128 varint, as in protobuf. */
void strbuf_add_varint(struct strbuf *sb, uint64_t v);

/* Adds s as a JSON string literal, quotes included; bytes that are not
 * UTF-8 are written as \u00XX of the byte so the output stays valid JSON. */
void strbuf_add_json(struct strbuf *sb, const char *s);

/*
 * Adds s as text for XML, in an attribute or an element: markup characters
 * as entities, and bytes XML cannot carry (control bytes, bytes that are
 * not UTF-8: file names may hold any byte) written as the text \xNN.
 */
void strbuf_add_xml(struct strbuf *sb, const char *s);

/* Reads a whole file into sb; returns 0 or -1 with errno set. */
int strbuf_read_file(struct strbuf *sb, const char *path);

#endif
