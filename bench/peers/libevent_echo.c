/* Echo server on libevent, the libevent way (as in its book): an
 * evconnlistener, a bufferevent per connection, and the read callback
 * moving the whole input buffer to the output buffer. */
#include "peer_args.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)sa;
    (void)len;
    (void)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv)
{
    peer_args a;
    peer_parse(&a, argc, argv, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    struct event_base *base = event_base_new();
    struct evconnlistener *l = NULL;
    if (base && inet_pton(AF_INET, a.host, &addr.sin_addr) == 1)
        l = evconnlistener_new_bind(base, on_accept, NULL,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, PEER_BACKLOG,
                                    (struct sockaddr *)&addr, sizeof addr);
    if (!l) {
        fprintf(stderr, "libevent_echo: %s:%d: cannot listen\n", a.host, a.port);
        return 1;
    }
    event_base_dispatch(base);
    return 0;
}
