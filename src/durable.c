/* durable.c - callbacks after an io_uring fdatasync, in commit order. */
#include "jobring/durable.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdlib.h>

struct durable_entry {
	struct loop_op op;	/* first: the CQE's user_data */
	struct durable *q;
	void *batch;
	durable_fn fn;
	int done, res;
	int cqe;		/* its own fsync has completed */
	int called;		/* called back via a later fsync; freed at its own CQE */
	struct durable_entry *next;
};

void durable_init(struct durable *q)
{
	q->head = q->tail = NULL;
	q->pending = 0;
}

static void synced(struct loop_op *op, int res, unsigned flags)
{
	struct durable_entry *e = (struct durable_entry *)op, *x;
	struct durable *q = e->q;
	(void)flags;

	e->cqe = 1;
	if (e->called) {
		free(e);
		return;
	}
	/* An fdatasync makes every earlier commit durable too. */
	for (x = q->head; x; x = x->next) {
		x->done = 1;
		x->res = res < 0 ? -EIO : 0;
		if (x == e)
			break;
	}
	while ((x = q->head) && x->done) {
		q->head = x->next;
		if (!q->head)
			q->tail = NULL;
		q->pending--;
		x->fn(x->batch, x->res);
		/* the kernel names x until its own CQE */
		if (x->cqe)
			free(x);
		else
			x->called = 1;
	}
}

void durable_after(struct durable *q, struct loop *loop, int fd, void *batch, durable_fn fn)
{
	struct durable_entry *e = xcalloc(1, sizeof(*e));
	struct io_uring_sqe *sqe;

	e->op.cb = synced;
	e->q = q;
	e->batch = batch;
	e->fn = fn;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->pending++;
	sqe = loop_sqe(loop, &e->op);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
}
