/* doorbell.h - need-wakeup doorbell: lets a consumer sleep on an eventfd while
 * its producers make no syscall at all as long as it is awake (the scheme of
 * io_uring's IORING_SQ_NEED_WAKEUP).
 *
 * One doorbell per consumer, in shared memory, on its own cache line; every
 * producer that pushes into one of the consumer's rings rings that bell.
 *
 * Protocol
 *   producer:  ring_push(...)            publishes k_tail (store-release)
 *              bell_notify(b)            seq_cst fence (F1), then loads
 *                                        sleeping; only if it is 1, clears it
 *                                        and writes 1 to the eventfd
 *   consumer:  bell_sleep_prepare(b)     stores sleeping = 1, then a seq_cst
 *                                        fence (F2)
 *              re-check every ring       (ring_count / ring_pop)
 *              work found → bell_sleep_cancel(b), process it
 *              none       → block on bell_fd(b) (io_uring poll, poll(2)...),
 *                           then bell_drain(b), bell_sleep_cancel(b)
 *
 * Why no wake-up is lost: F1 and F2 are seq_cst fences, so they are totally
 * ordered. The producer's tail store comes before F1 and its sleeping load
 * after it; the consumer's sleeping store comes before F2 and its tail load
 * after it (the classic store-buffering pattern with a full barrier on each
 * side). If F1 is ordered first, the consumer's re-check sees the new tail and
 * does not block. If F2 is ordered first, the producer's load sees
 * sleeping = 1 and writes the eventfd, so the block returns at once. Both
 * sides may act (a spurious wake-up, harmless); neither acting is impossible.
 * Without the fences a store could sit in a store buffer past the other
 * side's load, and both would miss each other.
 *
 * Cost: the producer pays one fence and one load per notify, and a syscall
 * only when the consumer declared itself asleep. Clearing sleeping with an
 * exchange means several producers ring a sleeping consumer at most once.
 *
 * Ownership: the eventfd belongs to whoever called bell_init (the supervisor);
 * forked children inherit the same fd number. */
#ifndef JOBRING_DOORBELL_H
#define JOBRING_DOORBELL_H

#include <stdatomic.h>
#include <stdint.h>

#include "jobring/ring.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "doorbell flag must be a lock-free atomic");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "doorbell counter must be a lock-free atomic");

/** A consumer's doorbell in shared memory (one cache line). */
struct doorbell {
	/** 1 while the consumer is (about to be) blocked on efd. Set by the
	 *  consumer, cleared by the consumer or by the producer that rings. */
	_Alignas(RING_CACHELINE) _Atomic uint32_t sleeping;
	/** The consumer's eventfd (non-blocking, close-on-exec), -1 if none. */
	int32_t efd;
	/** eventfd writes made by bell_notify so far (for metrics and tests). */
	_Atomic uint64_t rings;
};

/** Create the eventfd (EFD_NONBLOCK | EFD_CLOEXEC) and reset the bell.
 *  Returns 0 or -errno. The caller owns the fd: release it with bell_close. */
int bell_init(struct doorbell *b);

/** Close the eventfd (if any) and set efd to -1. */
void bell_close(struct doorbell *b);

/** Producer, after a ring_push that returned > 0: wake the consumer if and
 *  only if it declared itself asleep. No syscall when it is awake. */
void bell_notify(struct doorbell *b);

/** Consumer, before blocking: declare sleeping and fence. The caller MUST then
 *  re-check all its rings, and block on bell_fd() only if they are empty. */
void bell_sleep_prepare(struct doorbell *b);

/** Consumer: clear sleeping, after waking or when the re-check found work. */
void bell_sleep_cancel(struct doorbell *b);

/** Consumer: reset the eventfd counter with a non-blocking read (after
 *  waking; a no-op when nothing was written). */
void bell_drain(struct doorbell *b);

/** The eventfd to block on (POLLIN means a producer rang). */
int bell_fd(const struct doorbell *b);

/** How many times producers wrote the eventfd so far. */
uint64_t bell_rings(const struct doorbell *b);

#endif
