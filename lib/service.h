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
/* The time before which enable is refused after a cancel, or 0. */
time_t service_cancel_until(struct repo *r, const char *machine);

#endif
