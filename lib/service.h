/*
 * service.h — the service state of machines: enrolment, auto-enrolment and
 * the wait after a cancel, kept in the repository's service state (the
 * ref refs/backup/state, see repo.h).
 *
 * Auto-enrolment follows the seed: switching it on enrols machines defined
 * from then on, never the ones that already existed. When it is switched on,
 * the machines defined at that moment are recorded as "known"; a machine
 * that is neither enrolled nor known is enrolled the first time a command
 * runs it.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <time.h>

#include "machine.h"
#include "repo.h"

#define CANCEL_WAIT_SECONDS (24 * 60 * 60)

int service_enable(struct repo *r, const char *machine);
int service_is_enabled(struct repo *r, const char *machine);
int service_set_auto_enroll(struct repo *r, const struct config *c, int on);
/*
 * 1 when the machine is enrolled, enrolling it first when auto-enrolment
 * applies to it; 0 when it is not enrolled.
 */
int service_check_enrolled(struct repo *r, const char *machine);
/*
 * Cancels machine at now: disables it, keeping the time so that
 * service_enable() refuses it for CANCEL_WAIT_SECONDS, and deletes every
 * slot of it, counted in *nbackups; its data goes at the next space
 * reclamation (gc_reclaim()). Takes the machine's lock, waiting up to wait
 * seconds (ERR_LOCKED, printing nothing, when it stays held), and the
 * repository lock shared while refs move. Returns 0, ERR_LOCKED or -1.
 */
int service_cancel(struct repo *r, const char *machine, time_t now, long wait, size_t *nbackups);

/* The time before which enable is refused after a cancel, or 0. */
time_t service_cancel_until(struct repo *r, const char *machine);

#endif
