/* weft-info: the version, the backends compiled in, which of them work on
 * this machine (each is started once), and what AUTO picks. */
#include "weft.h"

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("weft %s\n\n", weft_version());
    printf("%-10s %-9s %-6s %s\n", "backend", "compiled", "works", "details");
    for (int k = WEFT_BACKEND_AUTO + 1; k < WEFT_BACKEND__COUNT; k++) {
        const char *name = weft_backend_name((weft_backend_kind)k);
        if (!weft_backend_compiled((weft_backend_kind)k)) {
            printf("%-10s %-9s %-6s\n", name, "no", "-");
            continue;
        }
        weft_loop *loop;
        weft_loop_opts opts = {.backend = (weft_backend_kind)k};
        int rc = weft_loop_new(&loop, &opts);
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
    if (env && *env)
        printf("WEFT_BACKEND=%s overrides AUTO for loops created with it\n", env);
    return picked >= 0 ? 0 : 1;
}
