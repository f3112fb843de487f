/* weft-info: the version, the backends compiled in, which of them work on
 * this machine (each is started once), and what AUTO picks.
 *
 * Exit status: 0 when loops made with AUTO will start here; 1 when they
 * will not (no backend works, or WEFT_BACKEND names one that is not
 * compiled in or does not work here); 2 when WEFT_BACKEND is not a backend
 * name at all, which every weft_loop_new() then refuses with
 * WEFT_EUNKNOWN_BACKEND. */
#include "weft.h"

#include <stdio.h>
#include <stdlib.h>

/* Why a backend is not in this build: the system it needs, or what it
 * needs at build time. */
static const char *missing(weft_backend_kind kind)
{
    switch (kind) {
    case WEFT_BACKEND_IO_URING:
        return "Linux only, with liburing at build time";
    case WEFT_BACKEND_EPOLL:
        return "Linux only";
    case WEFT_BACKEND_KQUEUE:
        return "needs <sys/event.h> (BSD, macOS) or libkqueue (pkg-config) at build time";
    case WEFT_BACKEND_IOCP:
#ifdef _WIN32
        return "not in this build (backends/iocp.c missing)";
#else
        return "Windows only";
#endif
    case WEFT_BACKEND_POLL:
        return "POSIX only (Windows has IOCP)";
    default:
        return "";
    }
}

/* What WEFT_BACKEND does to loops created with AUTO: 0, 1 or 2 as the
 * exit status above. */
static int check_env(const char *env)
{
    int k = weft_backend_from_name(env);
    if (k < 0) {
        printf("WEFT_BACKEND=%s: %s; every loop created with AUTO fails with "
               "WEFT_EUNKNOWN_BACKEND\n",
               env, weft_strerror(k));
        return 2;
    }
    if (k == WEFT_BACKEND_AUTO) {
        printf("WEFT_BACKEND=%s: the same as leaving it unset\n", env);
        return 0;
    }
    int rc = weft_backend_probe((weft_backend_kind)k);
    if (rc) {
        printf("WEFT_BACKEND=%s overrides AUTO, but loops created with AUTO fail here: %s\n", env,
               weft_strerror(rc));
        return 1;
    }
    printf("WEFT_BACKEND=%s overrides AUTO for loops created with it\n", env);
    return 0;
}

int main(void)
{
    printf("weft %s\n\n", weft_version());
    printf("%-10s %-9s %-6s %s\n", "backend", "compiled", "works", "details");
    for (int k = WEFT_BACKEND_AUTO + 1; k < WEFT_BACKEND__COUNT; k++) {
        const char *name = weft_backend_name((weft_backend_kind)k);
        if (!weft_backend_compiled((weft_backend_kind)k)) {
            printf("%-10s %-9s %-6s %s\n", name, "no", "-", missing((weft_backend_kind)k));
            continue;
        }
        weft_loop *loop;
        weft_loop_opts opts = {.backend = (weft_backend_kind)k};
        int rc = weft_loop_new(&opts, &loop);
        char info[256] = "";
        if (rc == 0) {
            weft_loop_backend_info(loop, info, sizeof info);
            weft_loop_free(loop);
        }
        printf("%-10s %-9s %-6s %s\n", name, "yes", rc == 0 ? "yes" : "no",
               rc == 0 ? info : weft_strerror(rc));
    }
    int picked = weft_backend_auto();
    printf("\nAUTO picks: %s\n",
           picked >= 0 ? weft_backend_name((weft_backend_kind)picked) : weft_strerror(picked));
    const char *env = getenv("WEFT_BACKEND");
    int status = picked >= 0 ? 0 : 1;
    if (env && *env) {
        int env_status = check_env(env);
        if (env_status > status)
            status = env_status;
    }
    return status;
}
