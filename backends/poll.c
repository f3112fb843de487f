/* poll(2) backend: the portable fallback for any POSIX system. Level-
 * triggered, so an fd is in the pollfd array only while an op waits on it;
 * the entry changes only when the wanted directions change. Entry 0 is the
 * read end of a self-pipe for wake-ups from other threads. */
#include "readiness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct weft_pollbe {
    weft__readiness r;
    struct pollfd *fds;
    uint32_t nfds, cap;
    int wake_rd, wake_wr;
} weft_pollbe;

static short events_of(uint8_t want)
{
    return (short)(((want & WEFT__WANT_IN) ? POLLIN : 0) | ((want & WEFT__WANT_OUT) ? POLLOUT : 0));
}

static void remove_entry(weft_pollbe *p, weft__fdslot *slot)
{
    uint32_t i = slot->mech_index - 1, last = --p->nfds;
    if (i != last) {
        p->fds[i] = p->fds[last];
        p->r.fds.slots[p->fds[i].fd].mech_index = i + 1;
    }
    slot->mech_index = 0;
    slot->registered = 0;
}

static int pl_update(weft__readiness *r, int fd, weft__fdslot *slot, uint8_t old)
{
    (void)old;
    weft_pollbe *p = (weft_pollbe *)r;
    if (!slot->want) {
        if (slot->mech_index)
            remove_entry(p, slot);
        return 0;
    }
    if (!slot->mech_index) {
        if (p->nfds == p->cap) {
            uint32_t cap = p->cap * 2;
            struct pollfd *fds = realloc(p->fds, cap * sizeof *fds);
            if (!fds)
                return -ENOMEM;
            p->fds = fds;
            p->cap = cap;
        }
        p->fds[p->nfds] = (struct pollfd){.fd = fd};
        slot->mech_index = ++p->nfds;
        slot->registered = 1;
    }
    p->fds[slot->mech_index - 1].events = events_of(slot->want);
    return 0;
}

static void pl_drop(weft__readiness *r, int fd, weft__fdslot *slot)
{
    (void)fd;
    if (slot->mech_index)
        remove_entry((weft_pollbe *)r, slot);
}

static const weft__readiness_mech pl_mech = {pl_update, pl_drop, 0};

static int pl_init(weft__backend *be, const weft_loop_opts *opts)
{
    (void)opts;
    weft_pollbe *p = (weft_pollbe *)be;
    int pfd[2];
    p->r.mech = &pl_mech;
    if (pipe(pfd) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(pfd[i], F_SETFL, fcntl(pfd[i], F_GETFL) | O_NONBLOCK);
        fcntl(pfd[i], F_SETFD, FD_CLOEXEC);
    }
    p->cap = 64;
    p->fds = malloc(p->cap * sizeof *p->fds);
    if (!p->fds) {
        close(pfd[0]);
        close(pfd[1]);
        return -ENOMEM;
    }
    p->wake_rd = pfd[0];
    p->wake_wr = pfd[1];
    p->fds[0] = (struct pollfd){.fd = p->wake_rd, .events = POLLIN};
    p->nfds = 1;
    return 0;
}

static void pl_fini(weft__backend *be)
{
    weft_pollbe *p = (weft_pollbe *)be;
    weft__ready_fini(&p->r);
    free(p->fds);
    close(p->wake_rd);
    close(p->wake_wr);
}

static int pl_wait(weft__backend *be, int64_t timeout_ns)
{
    weft_pollbe *p = (weft_pollbe *)be;
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t t = (timeout_ns + 999999) / 1000000; /* never wake before a timer is due */
        ms = t > 0x7fffffff ? 0x7fffffff : (int)t;
    }
    int n =
        WEFT__FAULT(be, -1, WEFT__FS_WAIT, NULL) ? (errno = EINTR, -1) : poll(p->fds, p->nfds, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (n == 0)
        return 0;
    if (p->fds[0].revents) {
        char drain[64];
        while (read(p->wake_rd, drain, sizeof drain) > 0) {
        }
    }
    /* Backwards: finishing ops may remove the current entry, which pulls
     * in the last one, already handled. */
    for (uint32_t i = p->nfds - 1; i >= 1; i--) {
        struct pollfd *e = &p->fds[i];
        short ev = e->revents;
        if (!ev)
            continue;
        e->revents = 0;
        int err = (ev & (POLLERR | POLLHUP | POLLNVAL)) != 0;
        weft__ready_event(&p->r, e->fd, err || (ev & POLLIN), err || (ev & POLLOUT), err);
    }
    return 0;
}

/* The wait, then the readiness events an injected fault owes (fault.h). */
static int pl_poll(weft__backend *be, int64_t timeout_ns)
{
    weft__readiness *r = (weft__readiness *)be;
    int rc = pl_wait(be, WEFT__READY_FAULT_TIMEOUT(r, timeout_ns));
    WEFT__READY_FAULT_REPLAY(r);
    return rc;
}

static int pl_wake(weft__backend *be)
{
    weft_pollbe *p = (weft_pollbe *)be;
    if (write(p->wake_wr, "", 1) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

static int pl_info(const weft__backend *be, char *buf, size_t size)
{
    (void)be;
    return snprintf(buf, size, "level-triggered poll(2), self-pipe wake-up");
}

const weft__vtable weft__poll_vtable = {
    .name = "poll",
    .kind = WEFT_BACKEND_POLL,
    .size = sizeof(weft_pollbe),
    .init = pl_init,
    .fini = pl_fini,
    WEFT__READINESS_OPS,
    .poll = pl_poll,
    .wake = pl_wake,
    .info = pl_info,
};
