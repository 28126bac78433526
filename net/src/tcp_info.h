/* tcp_info.h — the kernel's view of a TCP socket's sending side (tcp_info.c). */
#ifndef BFTNET_NET_TCP_INFO_H
#define BFTNET_NET_TCP_INFO_H

#include <stdbool.h>

#include "core.h"

/* fd's unacknowledged bytes, and if `rates` the bytes acknowledged and its
 * minimum round trip (0 each where the kernel does not say). 0 or -errno. */
int net__tcp_tx_info(int fd, bool rates, bn_tx_info_t *out);

#endif
