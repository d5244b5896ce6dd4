/* Unit test for util.c: ids, integer parsing, PRNG. */
#include "jobring/util.h"
#include "test.h"

#include <errno.h>

int main(void)
{
	char id[32];
	int64_t v;
	uint64_t s = 42;

	CHECK_EQ(id_new(id, sizeof(id), "job_", 20), 24);
	CHECK(strncmp(id, "job_", 4) == 0);
	for (int i = 4; i < 24; i++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", id[i]));

	CHECK_EQ(parse_i64("123", 0, 1000, &v), 0);
	CHECK_EQ(v, 123);
	CHECK_EQ(parse_i64("12x", 0, 1000, &v), -EINVAL);
	CHECK_EQ(parse_i64("", 0, 1000, &v), -EINVAL);
	CHECK_EQ(parse_i64("1001", 0, 1000, &v), -ERANGE);
	CHECK_EQ(parse_i64("-5", 0, 1000, &v), -ERANGE);
	CHECK_EQ(parse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v), -ERANGE);

	CHECK(rand_next(&s) != rand_next(&s));
	CHECK(now_ms() > 1700000000000LL);
	return T_PASS;
}
