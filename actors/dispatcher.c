/* dispatcher.c - the dispatcher actor's loop. */
#include "jobring/actor.h"
#include "jobring/log.h"

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	(void)a;
	(void)from;
	(void)m;
}

int dispatcher_main(struct actor *a)
{
	log_info("started");
	while (!actor_stopping) {
		actor_recv(a, on_msg, 4096);
		actor_wait(a, -1);
	}
	log_info("drained");
	return 0;
}
