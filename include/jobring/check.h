/* check.h - `jobring check DATADIR`: verify the store's invariants offline.
 *
 *  - every org's balance and held equal the sums of its ledger entries;
 *  - every job's hold is open iff it is non-terminal (test jobs hold nothing),
 *    and its ledger entries net to its open hold (resolved exactly once);
 *  - every job has exactly its by_status and by_org index entries, and every
 *    index entry points at a job that matches it; org counters match;
 *  - one terminal event per terminal episode of a job (retries start new
 *    episodes), and the last status event matches the job's status;
 *  - dlq entries and the JOB_IN_DLQ flag agree; idempotency keys point at
 *    the org's job with that key.
 * Library code: it reports to the given stream and returns. */
#ifndef JOBRING_CHECK_H
#define JOBRING_CHECK_H

#include <stdio.h>

struct store;

/** Run every check on an open store. Returns the number of violations (0 =
 *  healthy) or -errno if the store could not be read. Each violation is one
 *  line on out naming the record and what is wrong. */
int check_store(struct store *s, FILE *out);

#endif
