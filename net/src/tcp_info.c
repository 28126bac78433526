/*
 * tcp_info.c — what Linux knows of a TCP socket's sending side, for the
 * libuv transport's sock_tx_info (tcp_uv.c): the bytes it holds unacknowledged
 * (SIOCOUTQ), and from TCP_INFO the bytes the peer acknowledged, the
 * smallest round trip it measured and the segment size it sends. Its own file because the kernel's
 * struct tcp_info (linux/tcp.h, with the fields glibc's netinet/tcp.h lacks)
 * cannot be included beside netinet/tcp.h. Elsewhere than Linux: -ENOTSUP.
 */
#include <errno.h>
#include <string.h>

#include "tcp_info.h"

#ifdef __linux__
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int net__tcp_tx_info(int fd, bool rates, bn_tx_info_t *out) {
  int q = 0;
  if (ioctl(fd, SIOCOUTQ, &q) != 0) return -errno;
  out->queued = q > 0 ? (uint64_t)q : 0;
  if (!rates) return 0;
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -errno;
  /* An older kernel fills less: what it did not fill stays 0, "unknown". */
  out->acked = ti.tcpi_bytes_acked;
  out->min_rtt_us = ti.tcpi_min_rtt;
  out->mss = ti.tcpi_snd_mss;
  return 0;
}
#else
int net__tcp_tx_info(int fd, bool rates, bn_tx_info_t *out) {
  (void)fd;
  (void)rates;
  (void)out;
  return -ENOTSUP;
}
#endif
