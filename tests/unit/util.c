/* Unit test for util.c: ids, integer parsing, PRNG. */
#include "jobring/util.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted ids: later ids sort after earlier ones (by the millisecond), all
 * are distinct, and a forked child never hands out the parent's pool. */
static void sorted_ids(void)
{
	enum { N = 20000 };
	static char ids[N][32];
	static char *p[N];
	char a[32], b[32];
	int fd[2];

	for (int i = 0; i < N; i++) {
		CHECK_EQ(id_new_sorted(ids[i], sizeof(ids[i]), "job_", 20), 24);
		for (int k = 4; k < 24; k++)
			CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
				     ids[i][k]));
		p[i] = ids[i];
	}
	qsort(p, N, sizeof(p[0]), cmp_str);
	for (int i = 1; i < N; i++)
		CHECK(strcmp(p[i - 1], p[i]) != 0);
	/* the time prefix is monotone across ids made at least 2 ms apart */
	id_new_sorted(a, sizeof(a), "job_", 20);
	nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	id_new_sorted(b, sizeof(b), "job_", 20);
	CHECK(memcmp(a, b, 4 + ID_TIME_CHARS) < 0);
	CHECK(strcmp(a, b) < 0);

	/* the pool is warm in the parent now; parent and child draw next */
	CHECK_EQ(pipe(fd), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		id_new(a, sizeof(a), "x_", 20);
		_exit(write(fd[1], a, 23) == 23 ? 0 : 1);
	}
	id_new(b, sizeof(b), "x_", 20);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(read(fd[0], a, 23), 23);
	a[22] = b[22] = 0;
	CHECK(strcmp(a, b) != 0);
	close(fd[0]);
	close(fd[1]);
}

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
	sorted_ids();
	return T_PASS;
}
