/* Signals in the loop: asyncio's add_signal_handler / remove_signal_handler
 * and a task that waits for a signal.
 *
 * A handler is an ordinary callback: it runs on the loop's thread in the
 * loop's handle phase, never in signal context, so it may call anything
 * (schedule, cancel tasks, stop the loop). Signals of one kind that arrive
 * before the handler runs are merged into one call, as the kernel merges
 * them.
 *
 * Signals are process-wide; loops are per thread. Which loop gets a signal:
 * every loop that has a handler or a waiting task for it when it arrives,
 * each exactly once, whichever thread the kernel delivered it to. A loop
 * with none for it does not see it.
 *
 * How it is done (what the process sees):
 * - POSIX: from the first handler or waiter for signo in the process until
 *   the last is removed, weft's own sigaction handler is signo's
 *   disposition (the previous one is saved and then restored). That handler
 *   only marks the signal and writes a byte to a pipe the loops watch (it
 *   is async-signal-safe); the loops read the mark.
 * - io_uring, epoll: the loop also blocks signo in its own thread while it
 *   has a handler or waiter for it (restored after) and reads it from a
 *   signalfd. A signal blocked in every thread (block it before starting
 *   threads, as servers do) never interrupts a system call: it waits in
 *   the kernel until a loop's signalfd takes it. raise() and pthread_kill()
 *   aimed at a thread that blocks signo reach only a loop on that thread.
 * - poll: the loop unblocks signo in its own thread while it has a handler
 *   or waiter for it (restored after), so the kernel can deliver it there.
 * - kqueue: EVFILT_SIGNAL in the loop's kqueue; each kqueue sees every
 *   signal sent to the process. Mixing kqueue loops and loops on other
 *   backends for the same signal in one process is not supported.
 * - Windows: a console control handler (SetConsoleCtrlHandler), installed
 *   while any loop has a handler or waiter: Ctrl-C is SIGINT, Ctrl-Break
 *   SIGBREAK, and the console closing, logoff or shutdown SIGTERM; only
 *   these three may be used. For the last three the system ends the
 *   process when the control handler returns: it waits (at most 4.5 s)
 *   until no loop has a handler or waiter any more, so a graceful close
 *   can finish.
 * A loop with a handler or a waiter is not idle: WEFT_RUN_UNTIL_IDLE and
 * weft_run_until_complete keep waiting for the signal.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include "base.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A signal handler: runs on loop's thread with the signal's number and the
 * arg given with it. */
typedef void (*weft_signal_cb)(weft_loop *loop, int signo, void *arg);

/* Set cb(loop, signo, arg) as loop's handler for signo (asyncio's
 * add_signal_handler): one handler per signal and loop, so a second call
 * replaces the first (cb and arg), also from inside the handler. Loop
 * thread only. Errors: -EINVAL (NULL loop or cb; signo out of range, or
 * SIGKILL, SIGSTOP, a fault signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL) or one
 * the C library keeps for itself; on Windows anything but SIGINT, SIGBREAK
 * and SIGTERM), -ENOMEM, or the error of the system call that failed
 * (signalfd, pipe, sigaction, kevent); on error nothing changed. */
int weft_loop_add_signal_handler(weft_loop *loop, int signo, weft_signal_cb cb, void *arg);

/* Remove loop's handler for signo (asyncio's remove_signal_handler).
 * Returns 1 when one was removed, 0 when there was none; -EINVAL (NULL loop,
 * or signo out of range as above). When nothing in the process wants signo
 * any more its disposition, and the loop thread's mask, are restored. */
int weft_loop_remove_signal_handler(weft_loop *loop, int signo);

/* Task only: suspend until signo arrives, and return signo. Independent of
 * the handler: a signal wakes every task waiting for it and runs the
 * handler too. Between two waits, with no handler set, nothing wants signo
 * and its old disposition applies: keep a handler for a signal that must
 * not be missed. -ECANCELED if the task is cancelled while waiting
 * (nothing is left registered), -EPERM (not in a task, or loop is NULL),
 * and the errors of weft_loop_add_signal_handler. */
int weft_signal_wait(weft_loop *loop, int signo);

#ifdef __cplusplus
}
#endif
#endif
