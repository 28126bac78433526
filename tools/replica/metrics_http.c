/*
 * metrics_http.c — --metrics-listen HOST:PORT: GET /metrics answers with
 * bftnet_metrics_text (the library's Prometheus text exposition) followed
 * by the process's own standard series (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_open_fds, process_start_time_seconds,
 * from /proc), for a Prometheus server to scrape. The HTTP server is
 * libmicrohttpd's, on a thread of its own: the library embeds none.
 *
 * Built without libmicrohttpd (BFTNET_HAVE_MHD unset), --metrics-listen
 * fails with a message and everything else works.
 */
#include <dirent.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "replica.h"

#define METRICS_BUF_START (64u * 1024u)
#define METRICS_TRIES     4

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port. 0 or -1. */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap) {
  const char *colon;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return -1;
    if ((size_t)(end - s - 1) >= hcap) return -1;
    snprintf(host, hcap, "%.*s", (int)(end - s - 1), s + 1);
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= hcap) return -1;
    snprintf(host, hcap, "%.*s", (int)(colon - s), s);
  }
  if (!colon[1] || strlen(colon + 1) >= pcap) return -1;
  snprintf(port, pcap, "%s", colon + 1);
  return 0;
}

/* ------------------------------------------------- the process's series */

static double clock_ticks(void) {
  long t = sysconf(_SC_CLK_TCK);
  return t > 0 ? (double)t : 100.0;
}

/* utime + stime (s), RSS (bytes) and start time (s since the epoch). */
static void proc_stat(double *cpu_s, uint64_t *rss, double *start_s) {
  *cpu_s = 0, *rss = 0, *start_s = 0;
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f) return;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
  unsigned long long ut = 0, st = 0, start = 0;
  long long rss_pages = 0;
  /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt
   * cmajflt utime stime cutime cstime priority nice threads itreal starttime
   * vsize rss */
  if (!p || sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                   "%*d %*d %llu %*u %lld",
                   &ut, &st, &start, &rss_pages) != 4)
    return;
  double tk = clock_ticks();
  *cpu_s = (double)(ut + st) / tk;
  *rss = (uint64_t)(rss_pages > 0 ? rss_pages : 0) * (uint64_t)sysconf(_SC_PAGESIZE);
  /* starttime is in ticks since boot: add the boot time (btime). */
  f = fopen("/proc/stat", "r");
  if (!f) return;
  char line[256];
  unsigned long long btime = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "btime %llu", &btime) == 1) break;
  fclose(f);
  *start_s = (double)btime + (double)start / tk;
}

static unsigned open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  unsigned n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n > 0 ? n - 1 : 0; /* the directory's own descriptor */
}

/* Appends the process series to buf (len used of cap); false if short. */
static bool process_series(char *buf, size_t cap, size_t *len) {
  double cpu, start;
  uint64_t rss;
  proc_stat(&cpu, &rss, &start);
  int n = snprintf(buf + *len, cap - *len,
                   "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n"
                   "# TYPE process_cpu_seconds_total counter\n"
                   "process_cpu_seconds_total %.2f\n"
                   "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\n"
                   "process_resident_memory_bytes %" PRIu64 "\n"
                   "# HELP process_open_fds Number of open file descriptors.\n"
                   "# TYPE process_open_fds gauge\n"
                   "process_open_fds %u\n"
                   "# HELP process_start_time_seconds Start time of the process since the "
                   "epoch, in seconds.\n"
                   "# TYPE process_start_time_seconds gauge\n"
                   "process_start_time_seconds %.2f\n",
                   cpu, rss, open_fds(), start);
  if (n < 0 || (size_t)n >= cap - *len) return false;
  *len += (size_t)n;
  return true;
}

/* The whole page, malloc'd (*len bytes), or NULL. */
static char *render(size_t *len) {
  static _Atomic size_t last_cap = METRICS_BUF_START;
  size_t cap = atomic_load(&last_cap);
  for (int i = 0; i < METRICS_TRIES; i++) {
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t need = 0;
    int rc = bftnet_metrics_text(rp.net, buf, cap, &need);
    if (rc == 0 && process_series(buf, cap, &need)) {
      *len = need;
      return buf;
    }
    free(buf);
    if (rc != 0 && rc != BFTNET_EBUFSIZE) return NULL;
    cap = (rc == BFTNET_EBUFSIZE ? need : cap) * 2; /* room for the process series too */
    atomic_store(&last_cap, cap);
  }
  return NULL;
}

#ifdef BFTNET_HAVE_MHD
#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int mhd_result_t;
#else
typedef enum MHD_Result mhd_result_t;
#endif

static struct MHD_Daemon *mhd;

static mhd_result_t reply(struct MHD_Connection *c, unsigned status, const char *type, char *body,
                          size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
  if (!r) {
    if (mode == MHD_RESPMEM_MUST_FREE) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  mhd_result_t ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

static mhd_result_t on_request(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_len, void **req) {
  (void)cls, (void)version, (void)upload, (void)upload_len, (void)req;
  static char not_found[] = "not found: try /metrics\n", bad_method[] = "GET only\n",
              failed[] = "could not render the metrics\n";
  const char *text = "text/plain; charset=utf-8";
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, bad_method, strlen(bad_method),
                 MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/metrics") != 0)
    return reply(c, MHD_HTTP_NOT_FOUND, text, not_found, strlen(not_found), MHD_RESPMEM_PERSISTENT);
  size_t len = 0;
  char *body = render(&len);
  if (!body)
    return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, failed, strlen(failed),
                 MHD_RESPMEM_PERSISTENT);
  return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
               MHD_RESPMEM_MUST_FREE);
}

int metrics_http_start(const char *hostport) {
  char host[256], port[16];
  if (split_hostport(hostport, host, sizeof host, port, sizeof port) != 0)
    return rp_log("--metrics-listen %s: want HOST:PORT or [IPV6]:PORT", hostport), -1;
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                  *ai = NULL;
  int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (rc != 0) return rp_log("--metrics-listen %s: %s", hostport, gai_strerror(rc)), -1;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                         MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!mhd) return rp_log("--metrics-listen %s: cannot listen", hostport), -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
  unsigned bound = info ? info->port : 0;
  rp_log("metrics on http://%s%s%s:%u/metrics", strchr(host, ':') ? "[" : "", host,
         strchr(host, ':') ? "]" : "", bound);
  lines_emit(json_pack("{s:s, s:s, s:s, s:i}", "type", "metrics", "id", rp.o.id, "host", host,
                       "port", (int)bound));
  return 0;
}

void metrics_http_stop(void) {
  if (mhd) MHD_stop_daemon(mhd);
  mhd = NULL;
}

#else /* no libmicrohttpd */

int metrics_http_start(const char *hostport) {
  (void)render;
  (void)split_hostport;
  return rp_log("--metrics-listen %s: this bftnet-replica was built without libmicrohttpd "
                "(Debian: libmicrohttpd-dev)",
                hostport),
         -1;
}

void metrics_http_stop(void) {}

#endif
