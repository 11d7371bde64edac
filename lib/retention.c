#include <sys/types.h>

#include "retention.h"

int local_weekday(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return tm.tm_wday;
}

long local_day(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return (tm.tm_year + 1900L) * 400 + tm.tm_yday;
}

void retention_apply(struct ret_item *it, size_t n, int weekly_day, time_t now)
{
	ssize_t daily = -1, weekly = -1, biweekly = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		time_t age = now - it[i].created;

		it[i].slots = 0;
		if (age > RET_MAX_AGE)
			continue;
		if (daily < 0 || it[i].created > it[daily].created)
			daily = i;
		if (age < RET_WEEK && local_weekday(it[i].created) == weekly_day &&
		    (weekly < 0 || it[i].created > it[weekly].created))
			weekly = i;
	}
	for (i = 0; i < n; i++) {
		if (now - it[i].created > RET_MAX_AGE || local_weekday(it[i].created) != weekly_day)
			continue;
		if (weekly >= 0 && local_day(it[i].created) >= local_day(it[weekly].created))
			continue;
		if (biweekly < 0 || it[i].created > it[biweekly].created)
			biweekly = i;
	}
	if (daily >= 0)
		it[daily].slots |= SLOT_BIT_DAILY;
	if (weekly >= 0)
		it[weekly].slots |= SLOT_BIT_WEEKLY;
	if (biweekly >= 0)
		it[biweekly].slots |= SLOT_BIT_BIWEEKLY;
}
