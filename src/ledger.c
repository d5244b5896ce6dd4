/* ledger.c - balance and hold changes, each with its ledger entry. */
#include "jobring/ledger.h"

#include <errno.h>
#include <string.h>

#define LEDGER_VERSION 1u

int ledger_apply(struct store *s, MDB_txn *t, struct org_rec *org, enum ledger_kind kind,
		 const char *job, int64_t amount, int64_t at)
{
	struct ledger_rec e;
	unsigned char k[ORG_ID_MAX + 9];
	size_t on = strnlen(org->id, ORG_ID_MAX - 1);
	int r;

	switch (kind) {
	case LEDGER_GRANT:
		org->balance += amount;
		break;
	case LEDGER_HOLD:
		org->held += amount;
		break;
	case LEDGER_CAPTURE:
		org->balance -= amount;
		org->held -= amount;
		org->spent += amount;
		break;
	case LEDGER_RELEASE:
		org->held -= amount;
		break;
	default:
		return -EINVAL;
	}
	memset(&e, 0, sizeof(e));
	e.version = LEDGER_VERSION;
	e.kind = kind;
	if (job)
		strncpy(e.job, job, sizeof(e.job) - 1);
	e.amount = amount;
	e.at = at;
	e.balance_after = org->balance;
	e.held_after = org->held;
	org->ledger_seq++;
	memcpy(k, org->id, on);
	k[on] = 0;
	be64_put(k + on + 1, org->ledger_seq);
	if ((r = store_put(s, t, DB_LEDGER, k, on + 9, &e, sizeof(e))) < 0)
		return r;
	return org_put(s, t, org);
}
