/*
 * Unit test of the retention rules: thirty simulated days of daily runs,
 * checking after each day that the kept backups are exactly the seed's slots
 * with the ages it promises.
 */
#include <stdio.h>
#include <stdlib.h>

#include "retention.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

#define DAY (24 * 60 * 60)

int main(void)
{
	struct ret_item kept[64];
	size_t n = 0, i, j;
	time_t start = 1700000000;	/* a Tuesday, in UTC */
	int weekly_day = 0;		/* Sunday */

	setenv("TZ", "UTC", 1);
	CHECK(local_weekday(start) == 2);
	for (int day = 0; day < 30; day++) {
		time_t now = start + day * DAY;

		/* The run of the day, then retention; items without a slot go. */
		/* Windows move a little from day to day. */
		kept[n].created = now + (day % 3 - 1) * 3600;
		kept[n].slots = 0;
		n++;
		retention_apply(kept, n, weekly_day, kept[n - 1].created);
		now = kept[n - 1].created;
		for (i = j = 0; i < n; i++)
			if (kept[i].slots)
				kept[j++] = kept[i];
		n = j;

		int daily = 0, weekly = 0, biweekly = 0;
		for (i = 0; i < n; i++) {
			time_t age = now - kept[i].created;

			CHECK(age <= 14 * DAY);
			if (kept[i].slots & SLOT_BIT_DAILY) {
				daily++;
				CHECK(age < 2 * 3600);
			}
			if (kept[i].slots & SLOT_BIT_WEEKLY) {
				weekly++;
				CHECK(age < 7 * DAY && local_weekday(kept[i].created) == weekly_day);
			}
			if (kept[i].slots & SLOT_BIT_BIWEEKLY) {
				biweekly++;
				CHECK(age >= 7 * DAY - 2 * 3600 && age <= 14 * DAY &&
				      local_weekday(kept[i].created) == weekly_day);
			}
		}
		CHECK(daily == 1);
		CHECK(n <= 3);
		/* The first Sunday is day 5; from then on there is a weekly. */
		CHECK(weekly == (day >= 5));
		/* Biweekly from the second Sunday (day 12) until it is older than 14 days. */
		if (day >= 12)
			CHECK(biweekly == 1);
	}

	/* Missed runs: rotate later expires by age alone. */
	struct ret_item one = { start, 0 };
	retention_apply(&one, 1, 0, start + 13 * DAY);
	CHECK(one.slots == SLOT_BIT_DAILY);
	retention_apply(&one, 1, 0, start + 15 * DAY);
	CHECK(one.slots == 0);

	/* Two runs on the weekly day: the newer is weekly, the older goes. */
	struct ret_item two[2] = { { start + 5 * DAY, 0 }, { start + 5 * DAY + 3600, 0 } };
	retention_apply(two, 2, 0, start + 5 * DAY + 3600);
	CHECK(two[0].slots == 0 && two[1].slots == (SLOT_BIT_DAILY | SLOT_BIT_WEEKLY));

	/* Last week's backup a little under 7 days old is still biweekly. */
	struct ret_item wk[2] = { { start + 5 * DAY + 3600, 0 }, { start + 12 * DAY, 0 } };
	retention_apply(wk, 2, 0, start + 12 * DAY);
	CHECK(wk[0].slots == SLOT_BIT_BIWEEKLY && wk[1].slots == (SLOT_BIT_DAILY | SLOT_BIT_WEEKLY));

	if (!failed)
		printf("ok retention (30 simulated days)\n");
	return failed;
}
