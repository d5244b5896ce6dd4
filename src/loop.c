/* loop.c - io_uring submission and completion dispatch. */
#include "jobring/loop.h"

#include <errno.h>
#include <string.h>

int loop_init(struct loop *l, unsigned entries)
{
	struct io_uring_params p;

	memset(l, 0, sizeof(*l));
	memset(&p, 0, sizeof(p));
	/* COOP_TASKRUN: completions are only needed when we enter the kernel. */
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	int r = io_uring_queue_init_params(entries, &l->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(entries, &l->ring, &p);
	}
	return r;
}

void loop_fini(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&l->ring))) {
		int r = io_uring_submit(&l->ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			break;
		l->pending = 0;
	}
	if (sqe) {
		io_uring_sqe_set_data(sqe, op);
		l->pending++;
	}
	return sqe;
}

int loop_flush(struct loop *l)
{
	int r = 0;
	if (l->pending) {
		r = io_uring_submit(&l->ring);
		l->pending = 0;
	}
	return r < 0 ? r : 0;
}

static int dispatch(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		struct loop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;
		/* Mark it seen before the callback, which may submit more. */
		io_uring_cq_advance(&l->ring, 1);
		n++;
		if (op && op->cb)
			op->cb(op, res, flags);
	}
	return (int)n;
}

int loop_wait(struct loop *l, int64_t timeout_ms)
{
	struct io_uring_cqe *cqe;
	int r;

	if (io_uring_cq_ready(&l->ring)) {
		loop_flush(l);
		return dispatch(l);
	}
	if (timeout_ms == 0) {
		loop_flush(l);
		return dispatch(l);
	}
	if (timeout_ms < 0) {
		r = io_uring_submit_and_wait(&l->ring, 1);
	} else {
		struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
						.tv_nsec = (timeout_ms % 1000) * 1000000 };
		r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	}
	l->pending = 0;
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY)
		return r;
	return dispatch(l);
}
