#include <pthread.h>
#include <stdint.h>

#include "chunker.h"

/* Normalized chunking, level 2: harder to cut before the average size, easier after. */
#define BITS_SMALL 20
#define BITS_LARGE 16
#define TOP_MASK(bits) ((((uint64_t)1 << (bits)) - 1) << (64 - (bits)))

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

/* splitmix64 from the seed in docs/FORMAT.md. */
static void gear_init(void)
{
	uint64_t x = 0x6261636b75700001ULL;	/* "backup" 0 0 1 */
	int i;

	for (i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		gear[i] = z ^ (z >> 31);
	}
}

size_t chunker_cut(const unsigned char *p, size_t len)
{
	const uint64_t mask_s = TOP_MASK(BITS_SMALL), mask_l = TOP_MASK(BITS_LARGE);
	size_t i, normal, limit;
	uint64_t h = 0;

	pthread_once(&gear_once, gear_init);
	if (len <= CHUNK_MIN)
		return len;
	limit = len < CHUNK_MAX ? len : CHUNK_MAX;
	normal = limit < CHUNK_AVG ? limit : CHUNK_AVG;
	/* The hash only depends on the last 64 bytes; start it 64 bytes early. */
	for (i = CHUNK_MIN - 64; i < CHUNK_MIN; i++)
		h = (h << 1) + gear[p[i]];
	for (; i < normal; i++) {
		h = (h << 1) + gear[p[i]];
		if (!(h & mask_s))
			return i + 1;
	}
	for (; i < limit; i++) {
		h = (h << 1) + gear[p[i]];
		if (!(h & mask_l))
			return i + 1;
	}
	return limit;
}
