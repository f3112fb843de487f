/* The portable test runner behind harness.h (no Criterion).
 *
 *   test_x [--list] [--verbose] [FILTER]
 *
 * runs every registered test whose "suite/name" contains FILTER, each in a
 * child process of its own: the runner re-spawns itself with
 * --weft-run suite/name (posix_spawn on POSIX, CreateProcess on Windows),
 * kills the child when the test's timeout passes, and reads the outcome from
 * its exit status (0 passed, WEFT__SKIP_STATUS skipped, anything else or a
 * signal failed). It ends with the line "N passed, N failed, N skipped" and
 * exits non-zero if a test failed or FILTER matched nothing.
 *
 * Environment:
 *   WEFT_TEST_TIMEOUT_SCALE  multiplies every timeout (slow emulators)
 *   WEFT_TEST_SKIP           "suite/name,..." to skip, counted and named as
 *                            skipped (a limit of a tool, not of weft: e.g.
 *                            qemu-user's mappings, TSan's fiber count)
 *   MESON_EXE_WRAPPER        set by meson test in cross builds (e.g.
 *                            "qemu-aarch64 -L /usr/aarch64-linux-gnu"): it
 *                            prefixes the re-spawn on POSIX, since an
 *                            emulated child cannot exec a foreign binary. */
#define WEFT_TEST_PORTABLE 1
#include "harness.h"

#include <stdarg.h>
#include <stdint.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
#endif

/* A test that called cr_skip_test exits with this (the automake code). */
#define WEFT__SKIP_STATUS 77
#define WEFT__MAX_ARGS 32

/* Filled by the constructors before main; read-only afterwards. */
static struct weft__test *tests_head, **tests_tail = &tests_head;
static struct weft__suite *suites;
/* In a child: the test it runs, for the failure message. */
static const struct weft__test *current;

void weft__test_register(struct weft__test *t)
{
    *tests_tail = t;
    tests_tail = &t->next;
}

void weft__suite_register(struct weft__suite *s)
{
    s->next = suites;
    suites = s;
}

void weft__test_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "[FAIL] %s/%s: %s:%d: assertion failed: %s", current ? current->suite : "?",
            current ? current->name : "?", file, line, expr);
    /* fmt is " " plus the test's message, if it gave one. */
    if (fmt[1]) {
        fputc(':', stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    exit(1);
}

void weft__test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "[SKIP] %s/%s: ", current ? current->suite : "?",
            current ? current->name : "?");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(WEFT__SKIP_STATUS);
}

void weft__test_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The test's options over its suite's. */
static struct weft__test_opts effective(const struct weft__test *t)
{
    struct weft__test_opts o = {0};
    for (const struct weft__suite *s = suites; s; s = s->next)
        if (strcmp(s->name, t->suite) == 0)
            o = s->opts;
    if (t->opts.init)
        o.init = t->opts.init;
    if (t->opts.fini)
        o.fini = t->opts.fini;
    if (t->opts.timeout > 0)
        o.timeout = t->opts.timeout;
    if (t->opts.disabled)
        o.disabled = 1;
    return o;
}

/* Is full (suite/name) in the comma-separated list? */
static int listed(const char *list, const char *full)
{
    size_t n = strlen(full);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, full, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static void full_name(const struct weft__test *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", t->suite, t->name);
}

/* The child's side: run one test and exit with its outcome. */
static int run_here(const char *which)
{
    char full[256];
    for (const struct weft__test *t = tests_head; t; t = t->next) {
        full_name(t, full, sizeof full);
        if (strcmp(full, which) != 0)
            continue;
        struct weft__test_opts o = effective(t);
        current = t;
        if (o.init)
            o.init();
        t->fn();
        if (o.fini)
            o.fini();
        fflush(NULL);
        return 0;
    }
    fprintf(stderr, "no test %s\n", which);
    return 2;
}

enum outcome { PASSED, FAILED, SKIPPED };

#if defined(_WIN32)

BOOL weft__test_create_process(const char *self, char *cmd, STARTUPINFOA *si,
                               PROCESS_INFORMATION *pi)
{
    enum { ATTEMPTS = 5 };
    for (int attempt = 1;; attempt++) {
        if (CreateProcessA(self, cmd, NULL, NULL, TRUE, 0, NULL, NULL, si, pi))
            return TRUE;
        DWORD err = GetLastError();
        if (attempt == ATTEMPTS) {
            SetLastError(err);
            return FALSE;
        }
        fprintf(stderr, "[note] CreateProcess: error %lu, trying again (%d of %d)\n", err,
                attempt + 1, ATTEMPTS);
        Sleep(100 * attempt);
    }
}

static enum outcome run_child(const char *self, const char *which, double timeout)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "\"%s\" --weft-run %s", self, which);
    STARTUPINFOA si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    fflush(NULL);
    if (!weft__test_create_process(self, cmd, &si, &pi)) {
        fprintf(stderr, "[FAIL] %s: CreateProcess: error %lu\n", which, GetLastError());
        return FAILED;
    }
    DWORD ms = timeout > 0 ? (DWORD)(timeout * 1000) : INFINITE;
    enum outcome r = FAILED;
    if (WaitForSingleObject(pi.hProcess, ms) == WAIT_TIMEOUT) {
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, INFINITE);
        fprintf(stderr, "[FAIL] %s: timed out after %.1f s\n", which, timeout);
    } else {
        DWORD code = 1;
        GetExitCodeProcess(pi.hProcess, &code);
        if (code == 0)
            r = PASSED;
        else if (code == WEFT__SKIP_STATUS)
            r = SKIPPED;
        else
            fprintf(stderr, "[FAIL] %s: exit code %lu\n", which, (unsigned long)code);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return r;
}

static const char *self_path(const char *argv0, char *buf, size_t n)
{
    DWORD len = GetModuleFileNameA(NULL, buf, (DWORD)n);
    return len > 0 && len < n ? buf : argv0;
}

#else

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Split MESON_EXE_WRAPPER (shell-quoted words) into argv; returns the count. */
static int split_wrapper(char *s, char **argv, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        char *out = s;
        argv[n++] = out;
        char quote = 0;
        for (; *s && (quote || *s != ' '); s++) {
            if (quote && *s == quote)
                quote = 0;
            else if (!quote && (*s == '\'' || *s == '"'))
                quote = *s;
            else
                *out++ = *s;
        }
        if (*s)
            s++;
        *out = '\0';
    }
    return n;
}

static enum outcome run_child(const char *self, const char *which, double timeout)
{
    char *argv[WEFT__MAX_ARGS + 4];
    char wrapper[1024] = "";
    const char *w = getenv("MESON_EXE_WRAPPER");
    if (w)
        snprintf(wrapper, sizeof wrapper, "%s", w);
    int n = split_wrapper(wrapper, argv, WEFT__MAX_ARGS);
    argv[n++] = (char *)self;
    argv[n++] = (char *)"--weft-run";
    argv[n++] = (char *)which;
    argv[n] = NULL;
    pid_t pid;
    fflush(NULL);
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "[FAIL] %s: posix_spawn %s: %s\n", which, argv[0], strerror(rc));
        return FAILED;
    }
    /* Poll, backing off to 10 ms: the test's own time dominates. */
    double deadline = timeout > 0 ? now_s() + timeout : 0;
    long nap_ns = 100000;
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR) {
            fprintf(stderr, "[FAIL] %s: waitpid: %s\n", which, strerror(errno));
            return FAILED;
        }
        if (deadline && now_s() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            fprintf(stderr, "[FAIL] %s: timed out after %.1f s\n", which, timeout);
            return FAILED;
        }
        struct timespec nap = {0, nap_ns};
        nanosleep(&nap, NULL);
        if (nap_ns < 10000000)
            nap_ns *= 2;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return PASSED;
    if (WIFEXITED(status) && WEXITSTATUS(status) == WEFT__SKIP_STATUS)
        return SKIPPED;
    if (WIFSIGNALED(status))
        fprintf(stderr, "[FAIL] %s: killed by signal %d\n", which, WTERMSIG(status));
    else
        fprintf(stderr, "[FAIL] %s: exit status %d\n", which, WEXITSTATUS(status));
    return FAILED;
}

static const char *self_path(const char *argv0, char *buf, size_t n)
{
    /* A bare name came through PATH: find the file itself. */
    if (strchr(argv0, '/'))
        return argv0;
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len <= 0)
        return argv0;
    buf[len] = '\0';
    return buf;
}

#endif

int main(int argc, char **argv)
{
    const char *filter = NULL;
    int list = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--weft-run") == 0 && i + 1 < argc)
            return run_here(argv[i + 1]);
        if (strcmp(argv[i], "--list") == 0)
            list = 1;
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (argv[i][0] == '-' || filter) {
            fprintf(stderr, "usage: %s [--list] [--verbose] [FILTER]\n", argv[0]);
            return 2;
        } else
            filter = argv[i];
    }
    double scale = 1;
    const char *sc = getenv("WEFT_TEST_TIMEOUT_SCALE");
    if (sc && atof(sc) > 0)
        scale = atof(sc);
    const char *skip_list = getenv("WEFT_TEST_SKIP");
    char buf[4096];
    const char *self = self_path(argv[0], buf, sizeof buf);
    int passed = 0, failed = 0, skipped = 0, selected = 0;
    char full[256];
    for (const struct weft__test *t = tests_head; t; t = t->next) {
        full_name(t, full, sizeof full);
        if (filter && !strstr(full, filter))
            continue;
        selected++;
        if (list) {
            printf("%s\n", full);
            continue;
        }
        struct weft__test_opts o = effective(t);
        if (o.disabled || listed(skip_list, full)) {
            fprintf(stderr, "[SKIP] %s: %s\n", full, o.disabled ? "disabled" : "WEFT_TEST_SKIP");
            skipped++;
            continue;
        }
        if (verbose)
            printf("[RUN ] %s\n", full);
        switch (run_child(self, full, o.timeout * scale)) {
        case PASSED:
            passed++;
            if (verbose)
                printf("[PASS] %s\n", full);
            break;
        case SKIPPED:
            skipped++;
            break;
        case FAILED:
            failed++;
            break;
        }
    }
    if (list)
        return selected ? 0 : 1;
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (!selected)
        fprintf(stderr, "no test matches %s\n", filter ? filter : "(all)");
    return failed || !selected ? 1 : 0;
}
