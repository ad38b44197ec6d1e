/* SPDX-License-Identifier: MIT */
#include "localaddr.h"

#include "netaddr.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int
aimx__local_addrs(void *arg, uint8_t family, aimx_addr *out, size_t cap)
{
    struct ifaddrs *list, *ifa;
    size_t n = 0;

    (void)arg;
    if (getifaddrs(&list) != 0)
        return -1;
    for (ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
        aimx_addr a;
        int dup = 0;

        if (ifa->ifa_addr == NULL || !(ifa->ifa_flags & IFF_UP))
            continue;
        memset(&a, 0, sizeof a);
        if (family == AIMX_AF_INET && ifa->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)ifa->ifa_addr;
            a.family = AIMX_AF_INET;
            memcpy(a.bytes, &sin->sin_addr, 4);
        } else if (family == AIMX_AF_INET6 &&
                   ifa->ifa_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)ifa->ifa_addr;
            a.family = AIMX_AF_INET6;
            memcpy(a.bytes, &sin6->sin6_addr, 16);
        } else {
            continue;
        }
        /* Loopback, private, link-local, ULA...: not what receivers on
         * the internet see. */
        if (aimx__addr_nonglobal_class(&a) != NULL)
            continue;
        for (size_t i = 0; i < n && i < cap && !dup; i++)
            dup = memcmp(out[i].bytes, a.bytes, 16) == 0;
        if (dup)
            continue;
        if (n < cap)
            out[n] = a;
        n++;
    }
    freeifaddrs(list);
    return n > (size_t)0x7fffffff ? 0x7fffffff : (int)n;
}
