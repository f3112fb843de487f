/* epoll backend (Linux). Each fd is added once, edge-triggered, for both
 * directions, the first time an op has to wait on it; it is never modified
 * and is deleted only when the fd is closed or forgotten. Wake-ups from
 * other threads come through an eventfd. */
#include "readiness.h"

#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct weft_epoll {
    weft__readiness r;
    int epfd;
    int wakefd;
    struct epoll_event events[MAX_EVENTS];
} weft_epoll;

static int ep_update(weft__readiness *r, int fd, weft__fdslot *slot, uint8_t old)
{
    (void)old;
    if (slot->registered)
        return 0;
    weft_epoll *ep = (weft_epoll *)r;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
        return -errno;
    slot->registered = 1;
    return 0;
}

static void ep_drop(weft__readiness *r, int fd, weft__fdslot *slot)
{
    weft_epoll *ep = (weft_epoll *)r;
    if (slot->registered)
        epoll_ctl(ep->epfd, EPOLL_CTL_DEL, fd, NULL);
    slot->registered = 0;
}

static const weft__readiness_mech ep_mech = {ep_update, ep_drop, 1};

static int ep_init(weft__backend *be, const weft_loop_opts *opts)
{
    (void)opts;
    weft_epoll *ep = (weft_epoll *)be;
    ep->r.mech = &ep_mech;
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0)
        return -errno;
    ep->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ep->wakefd};
    if (ep->wakefd < 0 || epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->wakefd, &ev) < 0) {
        int err = -errno;
        if (ep->wakefd >= 0)
            close(ep->wakefd);
        close(ep->epfd);
        return err;
    }
    return 0;
}

static void ep_fini(weft__backend *be)
{
    weft_epoll *ep = (weft_epoll *)be;
    weft__ready_fini(&ep->r);
    close(ep->wakefd);
    close(ep->epfd);
}

static int timeout_ms(int64_t ns)
{
    if (ns < 0)
        return -1;
    int64_t ms = (ns + 999999) / 1000000; /* round up: never wake before a timer is due */
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static int ep_wait(weft__backend *be, int64_t timeout_ns)
{
    weft_epoll *ep = (weft_epoll *)be;
    int n = WEFT__FAULT(be, -1, WEFT__FS_WAIT, NULL)
                ? (errno = EINTR, -1)
                : epoll_wait(ep->epfd, ep->events, MAX_EVENTS, timeout_ms(timeout_ns));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct epoll_event *e = &ep->events[i];
        if (e->data.fd == ep->wakefd) {
            uint64_t v;
            if (read(ep->wakefd, &v, sizeof v) < 0) {
                /* EAGAIN: another read already drained it */
            }
            continue;
        }
        int err = (e->events & (EPOLLERR | EPOLLHUP)) != 0;
        weft__ready_event(&ep->r, e->data.fd, err || (e->events & (EPOLLIN | EPOLLRDHUP)),
                          err || (e->events & EPOLLOUT), err || (e->events & EPOLLRDHUP));
    }
    return 0;
}

/* The wait, then the readiness events an injected fault owes (fault.h). */
static int ep_poll(weft__backend *be, int64_t timeout_ns)
{
    weft__readiness *r = (weft__readiness *)be;
    int rc = ep_wait(be, WEFT__READY_FAULT_TIMEOUT(r, timeout_ns));
    WEFT__READY_FAULT_REPLAY(r);
    return rc;
}

static int ep_wake(weft__backend *be)
{
    weft_epoll *ep = (weft_epoll *)be;
    uint64_t one = 1;
    if (write(ep->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

static int ep_info(const weft__backend *be, char *buf, size_t size)
{
    (void)be;
    return snprintf(buf, size, "edge-triggered, eventfd wake-up");
}

const weft__vtable weft__epoll_vtable = {
    .name = "epoll",
    .kind = WEFT_BACKEND_EPOLL,
    .size = sizeof(weft_epoll),
    .init = ep_init,
    .fini = ep_fini,
    WEFT__READINESS_OPS,
    .poll = ep_poll,
    .wake = ep_wake,
    .info = ep_info,
};
