#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schedule.h"
#include "usage.h"

static const char *const day_names[7] = {
	"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"
};

const char *schedule_day_name(int weekday)
{
	return weekday >= 0 && weekday < 7 ? day_names[weekday] : NULL;
}

int schedule_parse_day(const char *s, int *weekday)
{
	int i;

	for (i = 0; i < 7; i++) {
		if (!strcasecmp(s, day_names[i]) ||
		    (strlen(s) == 3 && !strncasecmp(s, day_names[i], 3))) {
			*weekday = i;
			return 0;
		}
	}
	return -1;
}

int schedule_parse_window(const char *s, int *hour)
{
	int h;

	if ((s[0] != 'W' && s[0] != 'w') || s[1] < '0' || s[1] > '9')
		return -1;
	/* The canonical spelling only: "W4", not "W04" or "W4x". */
	if (!s[2])
		h = s[1] - '0';
	else if (s[1] != '0' && s[2] >= '0' && s[2] <= '9' && !s[3])
		h = (s[1] - '0') * 10 + (s[2] - '0');
	else
		return -1;
	if (h > 22 || h % 2)
		return -1;
	*hour = h;
	return 0;
}

static char *key(const char *machine, const char *what)
{
	return xasprintf("machine.%s.%s", machine, what);
}

/* The schedule of window w and day d (each NULL when unset); frees both. */
static int schedule_from(char *w, char *d, const char *machine, struct schedule *out)
{
	int ret = 0;

	out->window = SCHEDULE_DEFAULT_WINDOW;
	out->weekday = SCHEDULE_DEFAULT_WEEKDAY;
	out->window_set = out->day_set = 0;
	if (w) {
		if (schedule_parse_window(w, &out->window) < 0)
			ret = error("the service state holds an invalid window '%s' for machine '%s'; "
				    "set it again with 'backup schedule %s --window Wn'", w, machine, machine);
		else
			out->window_set = 1;
	}
	if (d && !ret) {
		if (schedule_parse_day(d, &out->weekday) < 0)
			ret = error("the service state holds an invalid day '%s' for machine '%s'; "
				    "set it again with 'backup schedule %s --day DAY'", d, machine, machine);
		else
			out->day_set = 1;
	}
	free(w);
	free(d);
	return ret;
}

int schedule_get(struct repo *r, const char *machine, struct schedule *out)
{
	char *kw = key(machine, "window"), *kd = key(machine, "day");
	char *w = repo_state_get(r, kw), *d = repo_state_get(r, kd);

	free(kw);
	free(kd);
	return schedule_from(w, d, machine, out);
}

int schedule_get_text(const char *text, size_t len, const char *machine, struct schedule *out)
{
	char *kw = key(machine, "window"), *kd = key(machine, "day");
	char *w = repo_state_text_get(text, len, kw), *d = repo_state_text_get(text, len, kd);

	free(kw);
	free(kd);
	return schedule_from(w, d, machine, out);
}

int schedule_set(struct repo *r, const char *machine, const struct schedule *s)
{
	char *k, buf[8];
	int ret = 0;

	if (s->window_set && (s->window < 0 || s->window > 22 || s->window % 2))
		return error("cannot set the window of machine '%s' to start at hour %d; "
			     "windows start at an even hour from 0 to 22", machine, s->window);
	if (s->day_set && !schedule_day_name(s->weekday))
		return error("cannot set the weekly day of machine '%s' to day %d; days are 0 (Sunday) to 6",
			     machine, s->weekday);
	if (s->window_set) {
		snprintf(buf, sizeof(buf), "W%d", s->window);
		k = key(machine, "window");
		ret = repo_state_set(r, k, buf);
		free(k);
	}
	if (s->day_set && !ret) {
		k = key(machine, "day");
		ret = repo_state_set(r, k, schedule_day_name(s->weekday));
		free(k);
	}
	return ret;
}
