/* libFuzzer target: a blob's zstd frame. */
#include <stdint.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf sb = STRBUF_INIT;

	blob_decode(data, size, &sb);
	strbuf_release(&sb);
	return 0;
}
