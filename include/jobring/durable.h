/* durable.h - pipelined group commit: run a callback once a commit is on
 * disk, without blocking the loop on the fsync.
 *
 * An actor whose store is opened with STORE_SYNC_DEFERRED commits (LMDB
 * syncs the data pages and writes the meta page), then hands the batch of
 * answers for that commit to durable_after(): an IORING_OP_FSYNC (datasync)
 * of the data file is submitted, and when it completes the batch's callback
 * runs — in commit order, and an fsync that completes covers every commit
 * before it too. Meanwhile the loop goes on with the next batch.
 *
 * Ownership: the queue owns its entries; the batch pointer is the caller's
 * and is handed back to the callback (res 0, or -EIO if the fsync failed). */
#ifndef JOBRING_DURABLE_H
#define JOBRING_DURABLE_H

#include "jobring/loop.h"

typedef void (*durable_fn)(void *batch, int res);

struct durable_entry;

struct durable {
	struct durable_entry *head, *tail;
	unsigned pending;	/* batches not yet called back */
};

void durable_init(struct durable *q);
/** Queue batch behind an fdatasync of fd submitted on loop. */
void durable_after(struct durable *q, struct loop *loop, int fd, void *batch, durable_fn fn);
static inline unsigned durable_pending(const struct durable *q)
{
	return q->pending;
}

#endif
