/* libFuzzer target: the XML reader and the S3 answers read with it, which
 * come from the network (listings, errors, multipart uploads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "strbuf.h"
#include "xml.h"

static int on_object(const struct s3_object *o, void *data)
{
	(void)data;
	/* Every key handed out is a C string. */
	return strlen(o->key) > (1u << 30);
}

static int on_upload(const struct s3_upload *u, void *data)
{
	(void)data;
	return strlen(u->key) + strlen(u->upload_id) > (1u << 30);
}

static int on_part(const struct s3_part *p, void *data)
{
	(void)data;
	if (p->number < 1 || p->number > 10000)
		__builtin_trap();
	return 0;
}

/* Visits every node, so that a bad pointer in the tree shows. */
static size_t walk(const struct xml_node *n, int depth)
{
	size_t total = 0;

	if (depth > 70)
		__builtin_trap();
	for (; n; n = n->next)
		total += strlen(n->name) + strlen(n->text) + walk(n->child, depth + 1);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	struct xml_node *root = NULL;
	char *a = NULL, *b = NULL;
	int marker;

	if (xml_parse(&root, xml, size) == 0) {
		if (!root || !root->name[0])
			__builtin_trap();
		walk(root, 0);
		/* xml_next() only ever returns siblings of the same name. */
		for (const struct xml_node *c = root->child; c; c = xml_next(c))
			if (strcmp(c->name, root->child->name))
				__builtin_trap();
	} else if (root) {
		__builtin_trap();
	}
	xml_free(root);

	s3_parse_list(xml, size, &a, on_object, NULL);
	free(a);
	a = NULL;
	s3_parse_error(xml, size, &a, &b);
	free(a);
	free(b);
	a = b = NULL;
	s3_parse_upload_id(xml, size, &a);
	free(a);
	a = NULL;
	s3_parse_uploads(xml, size, &a, &b, on_upload, NULL);
	free(a);
	free(b);
	s3_parse_parts(xml, size, &marker, on_part, NULL);
	return 0;
}
