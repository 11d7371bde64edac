/* libFuzzer target: the .meta record decoder. */
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct meta *m = NULL;
	size_t n = 0;

	if (meta_decode((const char *)data, size, &m, &n) == 0) {
		/* Whatever decodes must encode and decode to the same. */
		struct strbuf sb = STRBUF_INIT;
		struct meta *m2 = NULL;
		size_t n2 = 0, i;

		meta_header(&sb);
		for (i = 0; i < n; i++)
			meta_encode(&sb, &m[i]);
		if (meta_decode(sb.buf, sb.len, &m2, &n2) != 0 || n2 != n)
			__builtin_trap();
		meta_free_array(m2, n2);
		strbuf_release(&sb);
	}
	meta_free_array(m, n);
	return 0;
}
