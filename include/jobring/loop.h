/* loop.h - the io_uring event loop every actor runs.
 *
 * Each submitted operation carries a pointer to a struct loop_op embedded in
 * the caller's object as its user_data; the completion calls op->cb. Memory
 * named in an SQE belongs to the kernel until its CQE (for multishot ops,
 * until a CQE without IORING_CQE_F_MORE), so an object with an op in flight
 * must not be freed before then: the callback owns the decision.
 *
 * One call to loop_wait() submits everything queued, sleeps until at least
 * one completion or the timeout, and runs every completion ready. */
#ifndef JOBRING_LOOP_H
#define JOBRING_LOOP_H

#include <liburing.h>
#include <stdint.h>

struct loop_op;
typedef void (*loop_cb)(struct loop_op *op, int res, unsigned flags);

struct loop_op {
	loop_cb cb;
};

struct loop {
	struct io_uring ring;
	unsigned pending;	/* SQEs queued since the last submit */
};

/** Set up the ring. -ENOSYS / -EPERM where io_uring is not allowed. */
int loop_init(struct loop *l, unsigned entries);
void loop_fini(struct loop *l);
/** A free SQE, submitting queued ones first if the SQ is full. Never NULL. */
struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op);
/** Submit, then wait up to timeout_ms (-1: forever, 0: don't sleep) for
 *  completions and dispatch them all. Returns completions handled or -errno. */
int loop_wait(struct loop *l, int64_t timeout_ms);
/** Submit queued SQEs without waiting. */
int loop_flush(struct loop *l);

#endif
