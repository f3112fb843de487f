/* kqueue backend (FreeBSD, macOS, the other BSDs; on Linux over libkqueue).
 * Same shape as epoll: the first time an op has to wait on an fd, both
 * filters are added once, edge-triggered (EV_ADD|EV_CLEAR), WRITE before
 * READ (libkqueue loses EV_EOF the other way round), in their own kevent()
 * call with EV_RECEIPT so each change reports its own errno and the call
 * never waits (libkqueue drops receipts and sleeps when changes ride along
 * with a wait). Both are deleted before the fd is closed: libkqueue keeps
 * knotes across close(), so a reused fd number would never fire. Events
 * are only hints: every op retries its system call (connect reads
 * SO_ERROR). Only the portable kqueue API (EV_SET, struct kevent). */
#include "readiness.h"
#include "loop_internal.h"

#include <sys/types.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_EVENTS 64
/* A full event list is polled again at once, at most this many times per
 * poll(): what did not fit is not lost, it only waits for the next turn. */
#define MAX_REFILLS 8
/* libkqueue computes 1000 * tv_sec + tv_nsec / 1e6 in an int: stay below
 * 2^31 ms (about 24.8 days). A longer wait only returns early; the loop
 * waits again. */
#define MAX_WAIT_MS (INT32_MAX - 1000)
#define WAKE_IDENT 0
/* libkqueue caps an event list at MAX_KEVENT (512, src/common/private.h)
 * and asks epoll for as many events as the list has slots; one epoll event
 * becomes a READ and a WRITE kevent, and what does not fit is dropped
 * (libkqueue#89), edge-triggered, so never reported again. Past 255 fds no
 * list size avoids that: a full list makes the backend ask poll(2) about
 * every fd with waiting ops instead (see recover()). */
#if WEFT_KQUEUE_LIBKQUEUE
#define LIST_MAX 512
#else
#define LIST_MAX INT32_MAX
#endif

typedef struct weft_kqueue {
    weft__readiness r;
    int kq;
    int wake_rd, wake_wr; /* the pipe fallback; -1 with EVFILT_USER */
    uint32_t gen;         /* registrations made: tells a stale knote from the current one */
    uint32_t nreg;        /* fds registered */
    struct kevent *evs;
    int cap;             /* >= 2 * nreg + 2: libkqueue loses events when the list is short */
    struct pollfd *pfds; /* libkqueue: nreg entries for recover() */
    uint32_t pcap;
} weft_kqueue;

/* udata holds the registration's generation, stored in the fd's slot
 * (mech_index): the per-fd state, never an op, and not a pointer, which the
 * slot table's realloc would leave dangling. */
static void *gen_udata(uint32_t gen)
{
    return (void *)(uintptr_t)gen;
}

/* Apply n changes (each with EV_RECEIPT) now, without waiting. 0 or the
 * first error a change reported. */
static int apply(weft_kqueue *k, struct kevent *ch, int n)
{
    struct kevent out[2];
    struct timespec zero = {0, 0};
    int rc;
    do
        rc = kevent(k->kq, ch, n, out, n, &zero);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    for (int i = 0; i < rc; i++)
        if ((out[i].flags & EV_ERROR) && out[i].data != 0) /* a bit: libkqueue keeps the others */
            return -(int)out[i].data;
    return 0;
}

static void delete_both(weft_kqueue *k, int fd)
{
    struct kevent ch[2];
    EV_SET(&ch[0], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)fd, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    (void)apply(k, ch, 2); /* ENOENT / EBADF: already gone, which is what we want */
}

static int grow_events(weft_kqueue *k, uint32_t nreg)
{
    if ((int64_t)nreg * 2 + 2 <= k->cap)
        return 0;
    int64_t cap = k->cap;
    while (cap < (int64_t)nreg * 2 + 2)
        cap *= 2;
    if (cap > INT32_MAX / (int64_t)sizeof(struct kevent))
        return -ENOMEM;
    struct kevent *evs = realloc(k->evs, (size_t)cap * sizeof *evs);
    if (!evs)
        return -ENOMEM;
    k->evs = evs;
    k->cap = (int)cap;
    return 0;
}

static int grow_pollfds(weft_kqueue *k, uint32_t nreg)
{
    if (!WEFT_KQUEUE_LIBKQUEUE || nreg <= k->pcap)
        return 0;
    uint32_t cap = k->pcap ? k->pcap * 2 : MIN_EVENTS;
    while (cap < nreg)
        cap *= 2;
    struct pollfd *p = realloc(k->pfds, (size_t)cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    k->pfds = p;
    k->pcap = cap;
    return 0;
}

static int kq_update(weft__readiness *r, int fd, weft__fdslot *slot, uint8_t old)
{
    (void)old;
    if (slot->registered)
        return 0;
    weft_kqueue *k = (weft_kqueue *)r;
    int rc = grow_events(k, k->nreg + 1);
    if (!rc)
        rc = grow_pollfds(k, k->nreg + 1);
    if (rc)
        return rc;
    uint32_t gen = ++k->gen ? k->gen : ++k->gen; /* 0 means "no registration" */
    struct kevent ch[2];
    EV_SET(&ch[0], (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0,
           gen_udata(gen));
    EV_SET(&ch[1], (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0,
           gen_udata(gen));
    rc = apply(k, ch, 2);
    if (rc == -EPIPE)
        rc = 0; /* old macOS, a pipe whose peer is gone: registered all the same (mio#582) */
    if (rc) {
        delete_both(k, fd); /* the filter that did go in */
        return rc;
    }
    slot->mech_index = gen;
    slot->registered = 1;
    k->nreg++;
    return 0;
}

static void kq_drop(weft__readiness *r, int fd, weft__fdslot *slot)
{
    weft_kqueue *k = (weft_kqueue *)r;
    if (slot->registered) {
        delete_both(k, fd);
        k->nreg--;
    }
    slot->registered = 0;
    slot->mech_index = 0;
}

static const weft__readiness_mech kq_mech = {kq_update, kq_drop, 1};

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

/* EVFILT_USER where the kernel has it, registered before any thread can
 * trigger it (a trigger of an unknown ident fails with ENOENT); else a
 * pipe. WEFT_KQUEUE_WAKE=pipe forces the pipe, so tests reach it. */
static int wake_init(weft_kqueue *k)
{
    const char *force = getenv("WEFT_KQUEUE_WAKE");
    int want_pipe = force && strcmp(force, "pipe") == 0;
    k->wake_rd = k->wake_wr = -1;
#ifdef EVFILT_USER
    if (!want_pipe) {
        struct kevent ch;
        EV_SET(&ch, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, NULL);
        if (apply(k, &ch, 1) == 0)
            return 0;
    }
#else
    (void)want_pipe;
#endif
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    k->wake_rd = p[0];
    k->wake_wr = p[1];
    int rc = set_nonblock_cloexec(p[0]);
    if (!rc)
        rc = set_nonblock_cloexec(p[1]);
    if (!rc) {
        struct kevent ch;
        EV_SET(&ch, (uintptr_t)p[0], EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, NULL);
        rc = apply(k, &ch, 1);
    }
    return rc;
}

static void close_wake(weft_kqueue *k)
{
    if (k->wake_rd >= 0)
        close(k->wake_rd);
    if (k->wake_wr >= 0)
        close(k->wake_wr);
    k->wake_rd = k->wake_wr = -1;
}

static int kq_init(weft__backend *be, const weft_loop_opts *opts)
{
    (void)opts;
    weft_kqueue *k = (weft_kqueue *)be;
    k->r.mech = &kq_mech;
    k->wake_rd = k->wake_wr = -1;
    k->kq = kqueue();
    if (k->kq < 0)
        return -errno;
    int rc = fcntl(k->kq, F_SETFD, FD_CLOEXEC) < 0 ? -errno : 0;
    if (!rc) {
        k->evs = malloc(MIN_EVENTS * sizeof *k->evs);
        k->cap = MIN_EVENTS;
        rc = k->evs ? 0 : -ENOMEM;
    }
    if (!rc)
        rc = wake_init(k);
    if (rc) {
        close_wake(k);
        free(k->evs);
        k->evs = NULL;
        close(k->kq);
    }
    return rc;
}

static void kq_fini(weft__backend *be)
{
    weft_kqueue *k = (weft_kqueue *)be;
    weft__ready_fini(&k->r);
    close_wake(k);
    close(k->kq);
    free(k->evs);
    free(k->pfds);
}

static void drain_wake_pipe(weft_kqueue *k)
{
    char buf[64];
    while (read(k->wake_rd, buf, sizeof buf) > 0) {
    }
}

/* The socket error an event carries goes to the op at the head of each
 * queue that a system call would have given it to. libkqueue reads it with
 * getsockopt(SO_ERROR), which clears it: the retried call would then see
 * none (a refused connect would "succeed", a reset recv would read EOF).
 * Native kqueue leaves it set, so this gives the same result there. */
static void fail_heads(weft_kqueue *k, int fd, weft__fdslot *slot, int err)
{
    if (slot->marks & WEFT__MARK_NOT_SOCKET)
        return; /* libkqueue's EIO for a pipe's error: the retried call tells better */
    weft__list *lists[2] = {&slot->readers, &slot->writers};
    for (int i = 0; i < 2; i++) {
        weft__link *n = lists[i]->first;
        if (!n)
            continue;
        weft_op *op = weft__container_of(n, weft_op, link_);
        if (op->opflags_ & WEFT__OPFLAG_MULTI)
            continue; /* the emulation retries and ends on what recv says */
        char c;
        if (op->opcode == WEFT_OP_RECV && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            continue; /* data that came before the error is read first */
        if (op->opcode == WEFT_OP_RECV || op->opcode == WEFT_OP_SEND ||
            (op->opcode == WEFT_OP_CONNECT && (op->opflags_ & WEFT__OPFLAG_STARTED))) {
            weft__list_remove(lists[i], n);
            weft__op_done(k->r.base.loop, op, -(int64_t)err);
        }
    }
}

static void on_event(weft_kqueue *k, const struct kevent *e)
{
    if (e->filter == EVFILT_SIGNAL) {
        weft__signal_event(k->r.base.loop, (int)e->ident);
        return;
    }
    if (e->filter != EVFILT_READ && e->filter != EVFILT_WRITE)
        return; /* EVFILT_USER: the wake-up did its job by ending the wait */
    if (k->wake_rd >= 0 && e->ident == (uintptr_t)k->wake_rd) {
        drain_wake_pipe(k);
        return;
    }
    int fd = (int)e->ident;
    weft__fdslot *slot = weft__ready_slot(&k->r, fd);
    /* A knote of an earlier registration of this fd number: not ours. */
    if (!slot || !slot->registered || e->udata != gen_udata(slot->mech_index))
        return;
    /* EV_EOF and fflags are hints (libkqueue invents and misses them): the
     * ops retry their system calls. An error wakes both directions. */
    int err = (e->flags & EV_ERROR) || ((e->flags & EV_EOF) && e->fflags != 0);
    int rd = e->filter == EVFILT_READ;
    if ((e->flags & EV_EOF) && e->fflags != 0)
        fail_heads(k, fd, slot, (int)e->fflags);
    weft__ready_event(&k->r, fd, rd || err, !rd || err, err || (rd && (e->flags & EV_EOF)));
}

/* After a full event list on libkqueue, some edges may have been dropped:
 * ask poll(2) for the real state of every fd with waiting ops and act on
 * that (a poll or connect op must not complete on a guess). */
static void recover(weft_kqueue *k)
{
    uint32_t m = 0;
    for (int fd = 0; fd < k->r.fds.nslots && m < k->pcap; fd++) {
        weft__fdslot *slot = &k->r.fds.slots[fd];
        if (slot->registered && slot->want)
            k->pfds[m++] =
                (struct pollfd){.fd = fd,
                                .events = (short)(((slot->want & WEFT__WANT_IN) ? POLLIN : 0) |
                                                  ((slot->want & WEFT__WANT_OUT) ? POLLOUT : 0))};
    }
    if (m == 0 || poll(k->pfds, m, 0) <= 0)
        return;
    for (uint32_t i = 0; i < m; i++) {
        short re = k->pfds[i].revents;
        if (!re)
            continue;
        int bad = (re & (POLLERR | POLLHUP | POLLNVAL)) != 0;
        weft__ready_event(&k->r, k->pfds[i].fd, bad || (re & POLLIN), bad || (re & POLLOUT), bad);
    }
}

static int kq_wait(weft__backend *be, int64_t timeout_ns)
{
    weft_kqueue *k = (weft_kqueue *)be;
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        if (timeout_ns / 1000000 >= MAX_WAIT_MS)
            timeout_ns = (int64_t)MAX_WAIT_MS * 1000000;
        /* libkqueue waits with ppoll() and then epoll_wait() when the
         * timeout has a sub-ms part: from 1 ms on, round up to whole ms
         * (never early, as epoll does) for one system call. */
        if (WEFT_KQUEUE_LIBKQUEUE && timeout_ns >= 1000000)
            timeout_ns = (timeout_ns + 999999) / 1000000 * 1000000;
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000); /* < 1e9: FreeBSD says EINVAL otherwise */
        tsp = &ts;
    }
    for (int round = 0; round <= MAX_REFILLS; round++) {
        int cap = k->cap < LIST_MAX ? k->cap : LIST_MAX;
        int n = WEFT__FAULT(be, -1, WEFT__FS_WAIT, NULL) ? (errno = EINTR, -1)
                                                         : kevent(k->kq, NULL, 0, k->evs, cap, tsp);
        if (n < 0)
            return errno == EINTR ? 0 : -errno;
        int full = n == cap;
        /* k->evs[i] each time: a registration made while handling an
         * event may move the list (realloc keeps what it holds). */
        for (int i = 0; i < n; i++) {
            struct kevent e = k->evs[i];
            on_event(k, &e);
        }
        if (!full)
            break;
        if (WEFT_KQUEUE_LIBKQUEUE)
            recover(k);
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
        tsp = &ts;
    }
    return 0;
}

/* The wait, then the readiness events an injected fault owes (fault.h). */
static int kq_poll(weft__backend *be, int64_t timeout_ns)
{
    weft__readiness *r = (weft__readiness *)be;
    int rc = kq_wait(be, WEFT__READY_FAULT_TIMEOUT(r, timeout_ns));
    WEFT__READY_FAULT_REPLAY(r);
    return rc;
}

static int kq_wake(weft__backend *be)
{
    weft_kqueue *k = (weft_kqueue *)be;
    if (k->wake_wr >= 0) {
        char one = 1;
        if (write(k->wake_wr, &one, 1) < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno; /* EAGAIN: the pipe is full, a wake-up is pending anyway */
        return 0;
    }
#ifdef EVFILT_USER
    /* flags 0, not EV_ADD: the knote stays edge-triggered (macOS turns an
     * EV_ADD trigger level-triggered, smol-rs/polling#265). */
    struct kevent ch;
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    int rc;
    do
        rc = kevent(k->kq, &ch, 1, NULL, 0, NULL);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
#else
    return -ENOSYS;
#endif
}

/* Signals (core/loop/signal_posix.c asks): EVFILT_SIGNAL counts every
 * attempt to send signo to the process, blocked or not, whatever the
 * disposition, in every kqueue that has the knote (libkqueue: one signalfd
 * for the process, signo blocked in the calling thread). */
static int kq_signal_add(weft__backend *be, int signo)
{
    weft_kqueue *k = (weft_kqueue *)be;
    struct kevent ch;
    EV_SET(&ch, (uintptr_t)signo, EVFILT_SIGNAL, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    return apply(k, &ch, 1);
}

static void kq_signal_del(weft__backend *be, int signo)
{
    weft_kqueue *k = (weft_kqueue *)be;
    struct kevent ch;
    EV_SET(&ch, (uintptr_t)signo, EVFILT_SIGNAL, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    apply(k, &ch, 1);
}

static int kq_info(const weft__backend *be, char *buf, size_t size)
{
    const weft_kqueue *k = (const weft_kqueue *)be;
    return snprintf(buf, size, "%s, EV_CLEAR, %s wake-up",
                    WEFT_KQUEUE_LIBKQUEUE ? "libkqueue (over epoll)" : "native",
                    k->wake_wr >= 0 ? "pipe" : "EVFILT_USER");
}

const weft__vtable weft__kqueue_vtable = {
    .name = "kqueue",
    .kind = WEFT_BACKEND_KQUEUE,
    .size = sizeof(weft_kqueue),
    .init = kq_init,
    .fini = kq_fini,
    WEFT__READINESS_OPS,
    .poll = kq_poll,
    .wake = kq_wake,
    .info = kq_info,
    .signal_add = kq_signal_add,
    .signal_del = kq_signal_del,
};
