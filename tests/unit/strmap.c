/* Unit test for strmap.c against a brute-force oracle with random puts and deletes. */
#include "jobring/strmap.h"
#include "jobring/util.h"
#include "test.h"

#define N 5000

int main(void)
{
	static char keys[N][16];
	static int present[N];
	struct strmap m;
	uint64_t rng = 7;
	size_t count = 0;

	strmap_init(&m);
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof(keys[i]), "k%d", i * 7919);
	for (int step = 0; step < 200000; step++) {
		int i = (int)(rand_next(&rng) % N);
		if (rand_next(&rng) % 3) {
			void *prev = strmap_put(&m, keys[i], &present[i]);
			CHECK(prev == (present[i] ? &present[i] : NULL));
			count += !present[i];
			present[i] = 1;
		} else {
			void *v = strmap_del(&m, keys[i]);
			CHECK(v == (present[i] ? &present[i] : NULL));
			count -= present[i];
			present[i] = 0;
		}
		if (step % 10000 == 0) {
			size_t pos = 0, seen = 0;
			for (int k = 0; k < N; k++)
				CHECK(strmap_get(&m, keys[k]) == (present[k] ? &present[k] : NULL));
			while (strmap_next(&m, &pos))
				seen++;
			CHECK_EQ(seen, count);
		}
		CHECK_EQ(m.n, count);
	}
	strmap_free(&m);
	printf("strmap: ok\n");
	return T_PASS;
}
