/* libFuzzer target: a backup's commit message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct backup_info *b = NULL;

	memcpy(s, data, size);
	s[size] = '\0';
	snapshot_parse(s, &b);
	backup_info_free(b);
	free(s);
	return 0;
}
