/* handoff.c - passing an upgraded client socket from intake to the notifier:
 * one SOCK_SEQPACKET message per socket, carrying struct hub_handoff, the
 * bytes the HTTP server had read past the request head, and the fd itself
 * as SCM_RIGHTS ancillary data. Record boundaries come from SEQPACKET, so a
 * message is either whole or refused. */
#include "jobring/hub.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int hub_handoff_send(int sock, int fd, const struct hub_handoff *h, const void *leftover)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ (void *)h, sizeof(*h) },
		{ (void *)leftover, h->leftover_len },
	};
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = h->leftover_len ? 2 : 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	if (sock < 0 || fd < 0 || h->leftover_len > HUB_LEFTOVER_MAX ||
	    (h->leftover_len && !leftover))
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	/* Never block intake: a notifier that is down or behind makes this
	 * fail (-EAGAIN) and the caller closes the client, who reconnects. */
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(*h) + h->leftover_len ? 0 : -EMSGSIZE;
}

/* Close every fd an SCM_RIGHTS message carried (all of them, whatever else
 * is wrong with the message); return the first, or -1 if there were none or
 * more than one. */
static int take_fds(struct msghdr *mh)
{
	int fd = -1, count = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int x;
			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (count++ == 0)
				fd = x;
			else
				close(x);
		}
	}
	if (count > 1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

int hub_handoff_recv(int sock, struct hub_handoff *h, void *leftover, int *fd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];	/* room to see (and close) extras */
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ h, sizeof(*h) },
		{ leftover, HUB_LEFTOVER_MAX },
	};
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = 2,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	ssize_t n;
	int x;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0 && !(mh.msg_flags & MSG_CTRUNC) && !CMSG_FIRSTHDR(&mh))
		return -EPIPE;	/* the other end is gone */
	x = take_fds(&mh);
	if (x < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*h) ||
	    h->leftover_len > HUB_LEFTOVER_MAX || (size_t)n != sizeof(*h) + h->leftover_len ||
	    h->kind < HUB_WS || h->kind > HUB_WS_JOB || !terminated(h->org, sizeof(h->org)) ||
	    !h->org[0] || !terminated(h->job, sizeof(h->job)) ||
	    (h->kind == HUB_WS_JOB && !h->job[0])) {
		if (x >= 0)
			close(x);
		return -EBADMSG;
	}
	*fd = x;
	return 0;
}
