/* Signals in the loop, the Windows part: a console control handler
 * (SetConsoleCtrlHandler) turns Ctrl-C into SIGINT, Ctrl-Break into
 * SIGBREAK, and the console closing, logoff or shutdown into SIGTERM.
 *
 * The system runs the handler on a thread of its own, so it only posts the
 * signal to each loop that wants it (weft__sig_post, threadsafe). Console
 * handlers are process-wide: the registry of loops lives here, under a
 * mutex, and the handler is installed while it is not empty. */
#include "signal_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <windows.h>

#include "sys.h"

static struct {
    pthread_mutex_t mu;
    weft__list loops; /* weft__sigloop.reg: loops that want a signal */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

int weft__sig_os_check(int signo)
{
    return signo == SIGINT || signo == SIGBREAK || signo == SIGTERM ? 0 : -EINVAL;
}

static int empty(void)
{
    pthread_mutex_lock(&reg.mu);
    int e = weft__list_empty(&reg.loops);
    pthread_mutex_unlock(&reg.mu);
    return e;
}

int weft__sig_console_event(unsigned long type)
{
    int signo = type == CTRL_C_EVENT ? SIGINT : type == CTRL_BREAK_EVENT ? SIGBREAK : SIGTERM;
    int n = 0;
    pthread_mutex_lock(&reg.mu);
    for (weft__link *l = reg.loops.first; l; l = l->next) {
        weft__sigloop *s = weft__container_of(l, weft__sigloop, reg);
        if (s->want & weft__sigbit(signo)) {
            weft__sig_post(s, signo);
            n++;
        }
    }
    pthread_mutex_unlock(&reg.mu);
    if (!n)
        return FALSE; /* the next handler, or the default (end the process) */
    /* After these the system ends the process as soon as we return: give
     * the loops their graceful close first (4.5 s of the 5 s allowed). */
    if (type == CTRL_CLOSE_EVENT || type == CTRL_LOGOFF_EVENT || type == CTRL_SHUTDOWN_EVENT)
        for (int i = 0; i < 225 && !empty(); i++)
            Sleep(20);
    return TRUE;
}

static BOOL WINAPI on_ctrl(DWORD type)
{
    return weft__sig_console_event(type) ? TRUE : FALSE;
}

int weft__sig_os_add(weft__sigloop *s, int signo)
{
    int rc = 0;
    pthread_mutex_lock(&reg.mu);
    if (weft__list_empty(&reg.loops) && !SetConsoleCtrlHandler(on_ctrl, TRUE))
        rc = weft__win_error(GetLastError());
    if (rc == 0) {
        s->want |= weft__sigbit(signo);
        if (!s->registered) {
            weft__list_push(&reg.loops, &s->reg);
            s->registered = 1;
        }
    }
    pthread_mutex_unlock(&reg.mu);
    return rc;
}

static void del_locked(weft__sigloop *s, int signo)
{
    s->want &= ~weft__sigbit(signo);
    if (!s->want && s->registered) {
        weft__list_remove(&reg.loops, &s->reg);
        s->registered = 0;
        if (weft__list_empty(&reg.loops))
            SetConsoleCtrlHandler(on_ctrl, FALSE);
    }
}

void weft__sig_os_del(weft__sigloop *s, int signo)
{
    pthread_mutex_lock(&reg.mu);
    del_locked(s, signo);
    pthread_mutex_unlock(&reg.mu);
}

void weft__sig_os_detach(weft__sigloop *s)
{
    pthread_mutex_lock(&reg.mu);
    for (int signo = 1; signo < WEFT__NSIG; signo++)
        if (s->want & weft__sigbit(signo))
            del_locked(s, signo);
    pthread_mutex_unlock(&reg.mu);
}

void weft__sig_os_free(weft__sigloop *s)
{
    (void)s;
}
