/* netaddr.h - which addresses a webhook may not reach (SSRF policy), in one
 * place for both checks that use it: the endpoint URL when it is saved
 * (outbox_send.c: literal addresses) and every socket the HTTP client opens
 * (curlio.c: the resolved address, so DNS rebinding cannot get around it).
 *
 * Reserved: IPv4 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16,
 * 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24,
 * 203.0.113/24, 224/4 and 240/4; IPv6 ::, ::1, the v4-compatible ::/96,
 * fc00::/7, fe80::/10, fec0::/10, ff00::/8 and 2001:db8::/32; an IPv4
 * address inside ::ffff:0:0/96 (v4-mapped) or 64:ff9b::/96 (NAT64) is
 * judged as that IPv4 address. Pure functions, no state. */
#ifndef JOBRING_NETADDR_H
#define JOBRING_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/** a is in host byte order. */
bool netaddr_v4_reserved(uint32_t a);
/** b is the 16 bytes of the address, network order. */
bool netaddr_v6_reserved(const uint8_t b[16]);
/** For a socket address of len bytes; families other than IPv4 and IPv6
 *  count as reserved (refused). */
bool netaddr_reserved(const struct sockaddr *sa, socklen_t len);

#endif
