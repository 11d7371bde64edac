/*
 * xml.h — a small reader for the XML documents an S3 server answers with.
 *
 * S3 speaks XML in a handful of responses (a listing, an error, the start
 * and the end of a multipart upload, the uploads in progress), each a tree
 * of elements holding text. This reader builds exactly that tree and
 * nothing more: attributes are skipped, namespace prefixes are dropped from
 * names, comments and processing instructions are ignored, and a document
 * with a DOCTYPE is refused (S3 never sends one, and refusing it leaves no
 * entity expansion to attack). The five predefined entities, numeric
 * character references and CDATA sections are decoded.
 *
 * It is a few hundred lines instead of libxml2 because those responses are
 * all it will ever read, and every byte of them comes from the network: a
 * reader this size is fuzzed whole (tests/fuzz/fuzz_s3xml.c).
 */
#ifndef XML_H
#define XML_H

#include <stddef.h>

struct xml_node {
	char *name;		/* the element's name without its prefix */
	char *text;		/* the text directly inside it, decoded; "" if none */
	struct xml_node *child;	/* its first child element, or NULL */
	struct xml_node *next;	/* its next sibling element, or NULL */
};

/*
 * Parses the document buf[0..len) and sets *out to its root element, which
 * the caller frees with xml_free(). Returns 0, or ERR_CORRUPT (printing
 * nothing) when the bytes are not a well-formed document: tags that do not
 * match, an unknown entity, a NUL byte, elements nested deeper than 64, or
 * anything but comments after the root element.
 */
int xml_parse(struct xml_node **out, const char *buf, size_t len);

/* Frees a tree xml_parse() returned; accepts NULL. */
void xml_free(struct xml_node *root);

/* The first child of n named name, or NULL (also when n is NULL). */
struct xml_node *xml_child(const struct xml_node *n, const char *name);

/* The next sibling of n that has n's name, or NULL: walks repeated
 * elements such as the <Contents> of a listing. */
struct xml_node *xml_next(const struct xml_node *n);

/* The text of n's first child named name, or NULL when there is no such
 * child: xml_text(err, "Code"). */
const char *xml_text(const struct xml_node *n, const char *name);

#endif
