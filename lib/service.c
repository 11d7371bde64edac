#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service.h"
#include "slots.h"
#include "usage.h"

static char *key(const char *machine, const char *what)
{
	return xasprintf("machine.%s.%s", machine, what);
}

time_t service_cancel_until(struct repo *r, const char *machine)
{
	char *k = key(machine, "cancelledAt"), *v = repo_state_get(r, k);
	time_t t = v ? (time_t)strtoll(v, NULL, 10) + CANCEL_WAIT_SECONDS : 0;

	free(k);
	free(v);
	return t;
}

int service_cancel(struct repo *r, const char *machine, time_t now, long wait, size_t *nbackups)
{
	int lock = repo_lock(r, machine, wait), shared = -1, ret = -1;
	char *k = NULL, buf[32];

	*nbackups = 0;
	if (lock < 0)
		return lock == ERR_LOCKED ? ERR_LOCKED : -1;
	/* Refs move only with the repository held shared: never during a reclamation. */
	shared = repo_lock_shared(r, -1);
	if (shared < 0)
		goto out;
	snprintf(buf, sizeof(buf), "%lld", (long long)now);
	k = key(machine, "cancelledAt");
	/* Disable first: a timer that fires now finds the machine not enrolled. */
	if (repo_state_set(r, k, buf) < 0)
		goto out;
	free(k);
	k = key(machine, "enabled");
	if (repo_state_set(r, k, "false") < 0 || slots_delete_all(r, machine, nbackups) < 0)
		goto out;
	ret = 0;
out:
	free(k);
	repo_unlock(shared);
	repo_unlock(lock);
	return ret;
}

int service_enable(struct repo *r, const char *machine)
{
	time_t until = service_cancel_until(r, machine), now = time(NULL);
	char *k, buf[32];
	int ret;

	if (until > now) {
		struct tm tm;
		char when[64];

		gmtime_r(&until, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return error("machine '%s' was cancelled less than 24 hours ago; it can be enabled again from %s",
			     machine, when);
	}
	k = key(machine, "enabled");
	ret = repo_state_set(r, k, "true");
	free(k);
	if (ret < 0)
		return ret;
	snprintf(buf, sizeof(buf), "%lld", (long long)now);
	k = key(machine, "enabledAt");
	ret = repo_state_set(r, k, buf);
	free(k);
	return ret;
}

int service_is_enabled(struct repo *r, const char *machine)
{
	char *k = key(machine, "enabled");
	int on = repo_state_get_bool(r, k, 0);

	free(k);
	return on;
}

int service_set_auto_enroll(struct repo *r, const struct config *c, int on)
{
	char **names = NULL;
	size_t n = 0, i;
	int ret = 0;

	if (on && !repo_state_get_bool(r, "service.autoEnroll", 0)) {
		/* The machines that exist now stay as they are: not retroactive. */
		if (machine_list(&names, &n, c) < 0)
			return -1;
		for (i = 0; i < n && !ret; i++) {
			char *k = key(names[i], "known");
			ret = repo_state_set(r, k, "true");
			free(k);
		}
		free_strv(names, n);
	}
	if (!ret)
		ret = repo_state_set(r, "service.autoEnroll", on ? "true" : "false");
	return ret;
}

int service_check_enrolled(struct repo *r, const char *machine)
{
	char *k;
	int known;

	if (service_is_enabled(r, machine))
		return 1;
	if (!repo_state_get_bool(r, "service.autoEnroll", 0))
		return 0;
	k = key(machine, "known");
	known = repo_state_get_bool(r, k, 0);
	free(k);
	if (known || service_cancel_until(r, machine))
		return 0;
	return service_enable(r, machine) == 0;
}
