/* weft-load: opening the connections (optionally from several 127.0.0.x
 * source addresses, to get past one address's ephemeral ports). */
#include "weft_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int wl_connect_all(const wl_config *cfg, int *fds)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "weft-load: %s: %s\n", cfg->host, gai_strerror(rc));
        return -1;
    }
    int ok = 0;
    for (int i = 0; i < cfg->conns; i++) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fprintf(stderr, "weft-load: socket (connection %d): %s\n", i, strerror(errno));
            goto out;
        }
        fds[i] = fd;
        if (cfg->source_ips > 0 && ai->ai_family == AF_INET) {
            /* Pick the port at connect time, from the whole 4-tuple: ports
             * in TIME_WAIT towards another server port stay usable. */
            int one = 1;
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            struct sockaddr_in src = {.sin_family = AF_INET};
            src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % cfg->source_ips));
            if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
                fprintf(stderr, "weft-load: bind (connection %d): %s\n", i, strerror(errno));
                goto out;
            }
        }
        while (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "weft-load: connect %s:%d (connection %d): %s\n", cfg->host, cfg->port,
                    i, strerror(errno));
            goto out;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    ok = 1;
out:
    freeaddrinfo(ai);
    return ok ? 0 : -1;
}
