/* Unit test for netaddr.c: the reserved ranges, at and around their edges,
 * for IPv4, IPv6, v4-mapped and NAT64 addresses and socket addresses. */
#include "jobring/netaddr.h"
#include "jobring/util.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static bool v4(const char *s)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, s, &a) == 1);
	return netaddr_v4_reserved(ntohl(a.s_addr));
}

static bool v6(const char *s)
{
	struct in6_addr a;
	CHECK(inet_pton(AF_INET6, s, &a) == 1);
	return netaddr_v6_reserved(a.s6_addr);
}

static void expect(const char *const *v, size_t n, bool (*reserved)(const char *), bool want)
{
	for (size_t i = 0; i < n; i++)
		if (reserved(v[i]) != want) {
			fprintf(stderr, "%s: %s\n", v[i], want ? "not reserved" : "reserved");
			exit(T_FAIL);
		}
}

int main(void)
{
	static const char *const r4[] = {
		"0.0.0.0", "0.255.255.255", "10.0.0.1", "10.255.255.255", "100.64.0.0",
		"100.127.255.255", "127.0.0.1", "127.255.0.9", "169.254.169.254", "172.16.0.1",
		"172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.1.1", "198.18.0.1",
		"198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.1.2.3",
		"240.0.0.1", "255.255.255.255",
	};
	static const char *const ok4[] = {
		"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.1", "169.253.1.1", "172.15.255.255", "172.32.0.0",
		"192.0.1.1", "192.0.3.1", "192.167.1.1", "192.169.0.0", "198.17.255.255",
		"198.20.0.0", "198.51.99.1", "203.0.112.1", "223.255.255.255",
	};
	static const char *const r6[] = {
		"::", "::1", "::10.0.0.1", "::8.8.8.8", "::ffff:127.0.0.1", "::ffff:10.1.1.1",
		"64:ff9b::10.0.0.1", "64:ff9b::a9fe:a9fe", "fc00::1", "fdff::1", "fe80::1",
		"febf::1", "fec0::1", "ff02::1", "2001:db8::1",
	};
	static const char *const ok6[] = {
		"2001:4860::8888", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
		"fbff::1", "2001:db9::1", "2001:db7::1", "::1:0:0:1",
	};
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr sx = { .sa_family = AF_UNIX };

	expect(r4, ARRAY_SIZE(r4), v4, true);
	expect(ok4, ARRAY_SIZE(ok4), v4, false);
	expect(r6, ARRAY_SIZE(r6), v6, true);
	expect(ok6, ARRAY_SIZE(ok6), v6, false);
	CHECK(inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr) == 1);
	CHECK(netaddr_reserved((struct sockaddr *)&s4, sizeof(s4)));
	CHECK(inet_pton(AF_INET, "8.8.4.4", &s4.sin_addr) == 1);
	CHECK(!netaddr_reserved((struct sockaddr *)&s4, sizeof(s4)));
	CHECK(netaddr_reserved((struct sockaddr *)&s4, sizeof(s4) - 1));	/* short: refused */
	CHECK(inet_pton(AF_INET6, "2606:4700::1111", &s6.sin6_addr) == 1);
	CHECK(!netaddr_reserved((struct sockaddr *)&s6, sizeof(s6)));
	CHECK(inet_pton(AF_INET6, "::ffff:192.168.0.1", &s6.sin6_addr) == 1);
	CHECK(netaddr_reserved((struct sockaddr *)&s6, sizeof(s6)));
	CHECK(netaddr_reserved(&sx, sizeof(sx)));	/* other families: refused */
	return T_PASS;
}
