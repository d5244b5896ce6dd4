/* ledger.h - money: every change of an org's balance or holds is a ledger
 * entry written in the same transaction as the org record, so the entries
 * always sum to the balance (`jobring check` verifies it).
 *
 *   grant    balance += amount             (admin credits, may be negative)
 *   hold     held += amount                (a job was admitted)
 *   capture  balance -= amount, held -= amount   (a job completed: its price)
 *   release  held -= amount                (the rest of a hold, or all of it)
 *
 * A job's hold is resolved exactly once: capture(price) + release(hold-price)
 * on completion, or release(hold) on any other end. Test-mode jobs (rb_test_
 * keys) write no ledger entries. All functions take an open write txn. */
#ifndef JOBRING_LEDGER_H
#define JOBRING_LEDGER_H

#include "jobring/store.h"

/** Apply one entry to org (updating *org in memory and in the store). */
int ledger_apply(struct store *s, MDB_txn *t, struct org_rec *org, enum ledger_kind kind,
		 const char *job, int64_t amount, int64_t at);

#endif
