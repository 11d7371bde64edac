/* libFuzzer target: the pack index reader. */
#include <stdint.h>

#include "packidx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct packidx idx;

	if (packidx_parse(&idx, data, size) == 0) {
		if (idx.nr)
			packidx_find(&idx, idx.oids);
		packidx_release(&idx);
	}
	return 0;
}
