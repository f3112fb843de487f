/* Version string and error messages. */
#include "weft.h"
#include "weft_config.h"

#include <string.h>

const char *weft_version(void)
{
    return WEFT_VERSION;
}

const char *weft_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case WEFT_EUNKNOWN_BACKEND:
        return "unknown backend name (expected io_uring, epoll, kqueue, iocp, poll or auto)";
    case WEFT_ENOT_COMPILED:
        return "backend not compiled into this build of weft";
    case WEFT_EUNAVAILABLE:
        return "backend compiled in but not usable on this system";
    case WEFT_ECLOSED:
        return "closed";
    }
    if (err < 0 && err > -4000) {
        /* glibc, musl, mingw and the BSDs return static strings for known
         * codes; strerror is not reentrant only for unknown ones. */
        const char *s = strerror(-err);
        if (s)
            return s;
    }
    return "unknown error";
}
