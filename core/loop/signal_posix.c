/* Signals in the loop, the POSIX part: where signals come from
 * (weft/signal.h says what the process sees).
 *
 * Dispositions are process-wide, so this file keeps the one piece of
 * process-wide mutable state signals need: a registry (under a mutex) of
 * the loops that want each signal, with the dispositions it replaced, and
 * a self-pipe for its sigaction handler. The handler is the only code that
 * runs in signal context: it sets a bit and writes a byte, nothing else.
 *
 * Every loop on io_uring, epoll or poll watches the pipe; one on io_uring
 * or epoll also reads a signalfd of its own (for signals blocked in every
 * thread, which never reach the handler). Whichever loop reads a signal
 * hands it to every loop that wants it ("fan-out"), since the kernel gives
 * one signal to one reader. kqueue loops get theirs from their kqueue
 * (EVFILT_SIGNAL, through the backend's signal_add), which sees every
 * signal, so the fan-out skips them. */
#include "signal_internal.h"

#include "coro_internal.h" /* weft__coro_signals_caught */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/signalfd.h>
#define HAVE_SIGNALFD 1
#else
#define HAVE_SIGNALFD 0
#endif

static struct {
    pthread_mutex_t mu;
    weft__list loops;                 /* weft__sigloop.reg: loops that want a signal */
    unsigned users[WEFT__NSIG];       /* loops that want each signal */
    struct sigaction old[WEFT__NSIG]; /* the disposition weft replaced */
    int pipe_rd;                      /* the self-pipe, made once, kept for the process's life */
    int have_pipe;
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Read by the handler: written once, before any handler is installed. */
static atomic_int pipe_wr = -1;
/* Signals the handler saw, a bit each (two words: lock-free everywhere). */
static atomic_uint marks[2];

static void on_signal(int signo)
{
    int saved = errno;
    if (signo > 0 && signo < WEFT__NSIG) {
        atomic_fetch_or(&marks[(signo - 1) / 32], 1u << ((signo - 1) % 32));
        int fd = atomic_load(&pipe_wr);
        char c = 0;
        if (fd >= 0 && write(fd, &c, 1) < 0) {
            /* EAGAIN: the pipe is full, so a reader will wake anyway */
        }
    }
    errno = saved;
}

int weft__sig_os_check(int signo)
{
    if (signo == SIGKILL || signo == SIGSTOP || signo == SIGSEGV || signo == SIGBUS ||
        signo == SIGFPE || signo == SIGILL)
        return -EINVAL;
    sigset_t set;
    sigemptyset(&set);
    if (sigaddset(&set, signo) < 0) /* beyond NSIG, or the C library's own */
        return -EINVAL;
    return 0;
}

/* Under reg.mu: every loop that wants signo gets it, kqueue loops aside. */
static void fan_out_locked(int signo)
{
    uint64_t bit = weft__sigbit(signo);
    for (weft__link *l = reg.loops.first; l; l = l->next) {
        weft__sigloop *s = weft__container_of(l, weft__sigloop, reg);
        if (!s->via_kqueue && (s->want & bit))
            weft__sig_post(s, signo);
    }
}

static void fan_out(int signo)
{
    pthread_mutex_lock(&reg.mu);
    fan_out_locked(signo);
    pthread_mutex_unlock(&reg.mu);
}

/* The ops stay in flight while the loop wants any signal; a cancelled one
 * comes back here and is resubmitted if the loop wants one again. */
static void rearm(weft__sigloop *s, weft_op *op)
{
    if (s->loop->sig_wants && !weft_op_pending(op))
        weft_op_submit(s->loop, op);
}

static void pipe_ready(weft_op *op)
{
    weft__sigloop *s = op->data;
    char buf[64];
    while (read(op->fd, buf, sizeof buf) > 0) {
    }
    unsigned w[2] = {atomic_exchange(&marks[0], 0), atomic_exchange(&marks[1], 0)};
    for (int signo = 1; signo < WEFT__NSIG; signo++)
        if (w[(signo - 1) / 32] & (1u << ((signo - 1) % 32)))
            fan_out(signo);
    if (op->result >= 0 || op->result == -ECANCELED)
        rearm(s, op);
}

#if HAVE_SIGNALFD
static void sfd_ready(weft_op *op)
{
    weft__sigloop *s = op->data;
    struct signalfd_siginfo si[8];
    ssize_t n;
    while ((n = read(s->sfd, si, sizeof si)) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
            if (si[i].ssi_signo > 0 && si[i].ssi_signo < WEFT__NSIG)
                fan_out((int)si[i].ssi_signo);
    if (op->result >= 0 || op->result == -ECANCELED)
        rearm(s, op);
}

/* The signalfd's mask: the signals the loop wants. */
static int sfd_update(weft__sigloop *s)
{
    sigset_t set;
    sigemptyset(&set);
    for (int signo = 1; signo < WEFT__NSIG; signo++)
        if (s->want & weft__sigbit(signo))
            sigaddset(&set, signo);
    int fd = signalfd(s->sfd, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    s->sfd = fd;
    return 0;
}
#endif

static int uses_signalfd(const weft__sigloop *s)
{
    weft_backend_kind k = s->loop->backend->vt->kind;
    return HAVE_SIGNALFD && (k == WEFT_BACKEND_IO_URING || k == WEFT_BACKEND_EPOLL);
}

/* Under reg.mu: the self-pipe, made once. The write end goes to the
 * handler before any sigaction names it. */
static int make_pipe_locked(void)
{
    if (reg.have_pipe)
        return 0;
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        if (fcntl(p[i], F_SETFL, O_NONBLOCK) < 0 || fcntl(p[i], F_SETFD, FD_CLOEXEC) < 0) {
            int err = -errno;
            close(p[0]);
            close(p[1]);
            return err;
        }
    }
    reg.pipe_rd = p[0];
    reg.have_pipe = 1;
    atomic_store(&pipe_wr, p[1]);
    return 0;
}

/* Under reg.mu: s wants signo in the registry, with weft's disposition. */
static int enlist_locked(weft__sigloop *s, int signo)
{
    int rc = make_pipe_locked();
    if (rc)
        return rc;
    if (reg.users[signo] == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(signo, &sa, &reg.old[signo]) < 0)
            return -errno;
        weft__coro_signals_caught(1);
    }
    reg.users[signo]++;
    s->want |= weft__sigbit(signo);
    if (!s->registered) {
        weft__list_push(&reg.loops, &s->reg);
        s->registered = 1;
    }
    return 0;
}

static void unlist_locked(weft__sigloop *s, int signo)
{
    s->want &= ~weft__sigbit(signo);
    if (--reg.users[signo] == 0) {
        sigaction(signo, &reg.old[signo], NULL);
        weft__coro_signals_caught(-1);
    }
    if (!s->want && s->registered) {
        weft__list_remove(&reg.loops, &s->reg);
        s->registered = 0;
    }
}

/* The loop thread's mask: signalfd loops block signo (it must stay pending
 * for the signalfd), poll loops unblock it (the kernel may then deliver it
 * to the handler here); what was changed is undone in unmask(). */
static void mask(weft__sigloop *s, int signo)
{
    if (s->via_kqueue)
        return;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, signo);
    int block = uses_signalfd(s);
    if (pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, &old) != 0)
        return;
    int was = sigismember(&old, signo) == 1;
    if (block && !was)
        s->blocked_by_us |= weft__sigbit(signo);
    if (!block && was)
        s->unblocked_by_us |= weft__sigbit(signo);
}

static void unmask(weft__sigloop *s, int signo)
{
    uint64_t bit = weft__sigbit(signo);
    if (!((s->blocked_by_us | s->unblocked_by_us) & bit))
        return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask((s->blocked_by_us & bit) ? SIG_UNBLOCK : SIG_BLOCK, &set, NULL);
    s->blocked_by_us &= ~bit;
    s->unblocked_by_us &= ~bit;
}

int weft__sig_os_add(weft__sigloop *s, int signo)
{
    weft_loop *loop = s->loop;
    weft__backend *be = loop->backend;
    pthread_mutex_lock(&reg.mu);
    int rc = enlist_locked(s, signo);
    if (rc) {
        pthread_mutex_unlock(&reg.mu);
        return rc;
    }
    if (be->vt->signal_add) {
        rc = be->vt->signal_add(be, signo);
        if (rc == 0)
            s->via_kqueue = 1;
    }
#if HAVE_SIGNALFD
    else if (uses_signalfd(s)) {
        rc = sfd_update(s);
    }
#endif
    if (rc) {
        unlist_locked(s, signo);
        pthread_mutex_unlock(&reg.mu);
        return rc;
    }
    pthread_mutex_unlock(&reg.mu);
    mask(s, signo);
    if (s->via_kqueue)
        return 0;
    /* The ops: armed from the first want on (sig_wants is counted after
     * this returns, so submit here). */
    if (!weft_op_pending(&s->pipe_op)) {
        weft_op_prep_poll_in(&s->pipe_op, reg.pipe_rd, pipe_ready, s);
        s->pipe_watched = 1;
        rc = weft_op_submit(loop, &s->pipe_op);
    }
#if HAVE_SIGNALFD
    if (!rc && uses_signalfd(s) && !weft_op_pending(&s->sfd_op)) {
        weft_op_prep_poll_in(&s->sfd_op, s->sfd, sfd_ready, s);
        rc = weft_op_submit(loop, &s->sfd_op);
    }
#endif
    if (rc)
        weft__sig_os_del(s, signo); /* as if never added */
    return rc;
}

void weft__sig_os_del(weft__sigloop *s, int signo)
{
    weft__backend *be = s->loop->backend;
    pthread_mutex_lock(&reg.mu);
    unlist_locked(s, signo);
#if HAVE_SIGNALFD
    if (uses_signalfd(s) && s->sfd >= 0)
        sfd_update(s);
#endif
    pthread_mutex_unlock(&reg.mu);
    if (s->via_kqueue && be->vt->signal_del)
        be->vt->signal_del(be, signo);
    unmask(s, signo);
    if (s->want)
        return;
    /* Nothing wanted: the loop may go idle. The ops come back cancelled. */
    if (weft_op_pending(&s->pipe_op))
        weft_op_cancel(s->loop, &s->pipe_op);
    if (weft_op_pending(&s->sfd_op))
        weft_op_cancel(s->loop, &s->sfd_op);
}

void weft__sig_os_detach(weft__sigloop *s)
{
    weft__backend *be = s->loop->backend;
    pthread_mutex_lock(&reg.mu);
    for (int signo = 1; signo < WEFT__NSIG; signo++)
        if (s->want & weft__sigbit(signo)) {
            unlist_locked(s, signo);
            if (s->via_kqueue && be->vt->signal_del)
                be->vt->signal_del(be, signo);
            unmask(s, signo);
        }
    pthread_mutex_unlock(&reg.mu);
    /* The pipe is shared: this loop forgets it (its op completes cancelled
     * in the backend's fini); the descriptor stays open. */
    if (s->pipe_watched)
        weft_loop_forget_fd(s->loop, reg.pipe_rd);
    if (s->sfd >= 0)
        weft_loop_forget_fd(s->loop, s->sfd);
}

void weft__sig_os_free(weft__sigloop *s)
{
    if (s->sfd >= 0)
        close(s->sfd);
    s->sfd = -1;
}
