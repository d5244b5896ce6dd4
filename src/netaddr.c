/* netaddr.c - reserved address ranges (see netaddr.h). */
#include "jobring/netaddr.h"
#include "jobring/util.h"

#include <netinet/in.h>
#include <string.h>

bool netaddr_v4_reserved(uint32_t a)
{
	static const struct { uint32_t net, mask; } nets[] = {
		{ 0x00000000, 0xff000000 }, { 0x0a000000, 0xff000000 },	/* 0/8 10/8 */
		{ 0x64400000, 0xffc00000 }, { 0x7f000000, 0xff000000 },	/* 100.64/10 127/8 */
		{ 0xa9fe0000, 0xffff0000 }, { 0xac100000, 0xfff00000 },	/* 169.254/16 172.16/12 */
		{ 0xc0000000, 0xffffff00 }, { 0xc0000200, 0xffffff00 },	/* 192.0.0/24 192.0.2/24 */
		{ 0xc0a80000, 0xffff0000 }, { 0xc6120000, 0xfffe0000 },	/* 192.168/16 198.18/15 */
		{ 0xc6336400, 0xffffff00 }, { 0xcb007100, 0xffffff00 },	/* 198.51.100/24 203.0.113/24 */
		{ 0xe0000000, 0xe0000000 },				/* 224/4, 240/4 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(nets); i++)
		if ((a & nets[i].mask) == nets[i].net)
			return true;
	return false;
}

bool netaddr_v6_reserved(const uint8_t b[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const uint8_t zero[12];

	if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
		return netaddr_v4_reserved((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
					   (uint32_t)b[14] << 8 | b[15]);
	return !memcmp(b, zero, 12) ||				/* ::, ::1, v4-compatible */
	       (b[0] & 0xfe) == 0xfc ||				/* fc00::/7 */
	       (b[0] == 0xfe && (b[1] & 0x80) == 0x80) ||	/* fe80::/10, fec0::/10 */
	       b[0] == 0xff ||					/* ff00::/8 */
	       (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8);	/* 2001:db8::/32 */
}

bool netaddr_reserved(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;
		return netaddr_v4_reserved(ntohl(s4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		return netaddr_v6_reserved(s6->sin6_addr.s6_addr);
	}
	return true;
}
