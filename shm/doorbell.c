/* doorbell.c - need-wakeup flag plus eventfd (see doorbell.h for the protocol
 * and the argument that no wake-up is lost).
 *
 * Edges:
 *   F1  bell_notify: seq_cst fence between the producer's k_tail store
 *       (ring_push P1) and its load of sleeping; pairs with F2
 *   F2  bell_sleep_prepare: seq_cst fence between the consumer's store of
 *       sleeping = 1 and its re-check loads of k_tail; pairs with F1
 * The flag itself is accessed relaxed: the fences do the ordering, and the
 * eventfd write/read is a syscall, itself a full barrier. */
#include "jobring/doorbell.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(sizeof(struct doorbell) == RING_CACHELINE, "a doorbell fills one cache line");

int bell_init(struct doorbell *b)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	atomic_init(&b->sleeping, 0);
	atomic_init(&b->rings, 0);
	b->efd = fd;
	return 0;
}

void bell_close(struct doorbell *b)
{
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
}

void bell_notify(struct doorbell *b)
{
	uint64_t one = 1;

	/* F1: pairs with F2 in bell_sleep_prepare. Orders our earlier k_tail
	 * store before the load of sleeping below. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Plain load first so that a busy consumer costs no read-modify-write. */
	if (!atomic_load_explicit(&b->sleeping, memory_order_relaxed))
		return;
	/* Only one producer rings a given sleep: the exchange pairs with the
	 * consumer's store in bell_sleep_prepare (ordered by F1/F2) and with
	 * other producers' exchanges (one read-modify-write order). */
	if (!atomic_exchange_explicit(&b->sleeping, 0, memory_order_relaxed))
		return;
	atomic_fetch_add_explicit(&b->rings, 1, memory_order_relaxed);
	/* An eventfd write fails only with EAGAIN when the counter would
	 * overflow (then the consumer is woken anyway) or EINTR; retry the
	 * latter. */
	while (write(b->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void bell_sleep_prepare(struct doorbell *b)
{
	atomic_store_explicit(&b->sleeping, 1, memory_order_relaxed);
	/* F2: pairs with F1 in bell_notify. Orders the store above before the
	 * caller's re-check of k_tail. */
	atomic_thread_fence(memory_order_seq_cst);
}

void bell_sleep_cancel(struct doorbell *b)
{
	/* Relaxed: a producer that still sees 1 only makes a spurious write. */
	atomic_store_explicit(&b->sleeping, 0, memory_order_relaxed);
}

void bell_drain(struct doorbell *b)
{
	uint64_t v;

	/* Non-blocking fd: EAGAIN when nothing was written. */
	while (read(b->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

int bell_fd(const struct doorbell *b)
{
	return b->efd;
}

uint64_t bell_rings(const struct doorbell *b)
{
	return atomic_load_explicit(&b->rings, memory_order_relaxed);
}
