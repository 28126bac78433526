/* run.c — the run: start, time zero, the end of the duration, stop,
 * abort, signals, and closing the loop once every replica is gone. */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* -------------------------------------------------- start, stop, finish */

static void maybe_finish(void);

/* Every initial replica starts at once: on a small machine, many take longer. */
static unsigned start_timeout_ms(void) {
  return CL_START_TIMEOUT_MS + CL_START_PER_REPLICA_MS * cl.ninit;
}

/* After SIGTERM, beyond the drain: every replica writes its report and
 * closes its connections at the same moment. */
static unsigned exit_grace_ms(void) {
  return CL_EXIT_GRACE_MS + CL_EXIT_PER_REPLICA_MS * cl.nslots;
}

static void on_start_timeout(uv_timer_t *t) {
  (void)t;
  for (unsigned i = 0; i < cl.ninit; i++)
    if (!cl.rep[i].inc || !cl.rep[i].inc->loaded) {
      char why[CL_PATH + 128];
      snprintf(why, sizeof why, "%s did not start within %u ms; see %s", cl.rep[i].name,
               start_timeout_ms(), cl.rep[i].log_path);
      run_abort(why);
      return;
    }
}

static void on_end(uv_timer_t *t) {
  (void)t;
  run_stop("duration reached");
}

/* Each second: the replicas' resources, then the progress line. */
static void on_tick(uv_timer_t *t) {
  if (cl.phase == PH_RUNNING)
    for (unsigned i = 0; i < cl.nslots; i++)
      procs_sample(&cl.rep[i], CL_SAMPLE_TICK);
  lines_tick(t);
}

static void maybe_time_zero(void) {
  if (cl.phase != PH_STARTING) return;
  for (unsigned i = 0; i < cl.ninit; i++)
    if (!cl.rep[i].inc || !cl.rep[i].inc->loaded) return;
  /* Timers count from the loop's time, which a busy turn leaves behind:
   * make it now, or the run would end (and faults fire) early. */
  uv_update_time(&cl.loop);
  cl.t0_ns = uv_hrtime();
  cl.t0_set = true;
  cl.phase = PH_RUNNING;
  for (unsigned i = 0; i < cl.nslots; i++)
    procs_sample(&cl.rep[i], CL_SAMPLE_ZERO); /* CPU counts from here */
  uv_timer_stop(&cl.start_timer);
  cl_event("cluster", -1, "start",
           "time zero: %u replicas listening with their membership loaded; "
           "running %.1f s",
           cl.ninit, cl.o.duration_s);
  uv_timer_start(&cl.tick_timer, on_tick, 1000, 1000);
  uv_timer_start(&cl.end_timer, on_end, (uint64_t)llround(cl.o.duration_s * 1000), 0);
  faults_plan_arm();
}

static void on_stop_timeout(uv_timer_t *t) {
  (void)t;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (!procs_alive(inc)) continue;
    cl_event("replica", -1, "exit", "%s did not exit within %u ms of SIGTERM: SIGKILL",
             cl.rep[i].name, cl.o.drain_ms + exit_grace_ms());
    uv_process_kill(&inc->proc, SIGKILL);
  }
}

static void stop_timers(void) {
  uv_timer_stop(&cl.plan_timer);
  uv_timer_stop(&cl.end_timer);
  uv_timer_stop(&cl.start_timer);
  uv_timer_stop(&cl.members_timer);
  for (unsigned i = 0; i < cl.nslots; i++)
    uv_timer_stop(&cl.rep[i].retry);
}

/* The end: lift blackholes and refusals so the drain can complete (latency
 * stays), then SIGTERM every replica at once. */
void run_stop(const char *why) {
  if (cl.phase >= PH_STOPPING) return;
  bool started = cl.phase == PH_RUNNING;
  cl.phase = PH_STOPPING;
  cl.stop_ms = cl_now_ms();
  stop_timers();
  int lifted = proxies_lift_all();
  if (cl.o.netns) {
    for (unsigned i = 0; i < cl.nslots; i++)
      for (unsigned p = 0; p < cl.npaths; p++)
        lifted += cl.ns.down[i][p] > 0;
    cluster_netns_all_up(&cl.ns);
  }
  if (started)
    for (unsigned i = 0; i < cl.nslots; i++)
      procs_sample(&cl.rep[i], CL_SAMPLE_STOP); /* the run's CPU ends here */
  int n = 0;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (procs_alive(inc) && !inc->stop_sent) {
      inc->stop_sent = true;
      uv_process_kill(&inc->proc, SIGTERM);
      n++;
    }
  }
  if (started)
    cl_event("cluster", -1, "stop", "%s: SIGTERM to %d replicas%s", why, n,
             lifted ? "; blackholes/refusals/link-downs lifted for the drain" : "");
  uv_timer_start(&cl.stop_timer, on_stop_timeout, cl.o.drain_ms + exit_grace_ms(), 0);
  maybe_finish();
}

void run_abort(const char *why) {
  cl_warn("%s", why);
  cl.failed = true;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (procs_alive(cl.rep[i].inc)) {
      cl.rep[i].inc->stop_sent = true;
      uv_process_kill(&cl.rep[i].inc->proc, SIGKILL);
    }
  if (cl.phase < PH_STOPPING) {
    cl.phase = PH_STOPPING;
    stop_timers();
    uv_timer_start(&cl.stop_timer, on_stop_timeout, CL_EXIT_GRACE_MS, 0);
  }
  maybe_finish();
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  if (++cl.signals == 1 && cl.phase < PH_STOPPING) {
    char why[64];
    snprintf(why, sizeof why, "interrupted (%s)", strsignal(sig));
    if (cl.phase == PH_STARTING)
      run_abort(why);
    else
      run_stop(why);
    return;
  }
  cl_warn("second signal: SIGKILL to every replica");
  for (unsigned i = 0; i < cl.nslots; i++)
    if (procs_alive(cl.rep[i].inc)) uv_process_kill(&cl.rep[i].inc->proc, SIGKILL);
}

/* When every incarnation is gone: close proxies, timers and signals, so
 * that uv_run returns. */
static void maybe_finish(void) {
  if (cl.phase != PH_STOPPING) return;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.rep[i].inc) return;
  cl.phase = PH_DONE;
  if (cl.stop_aborts)
    text_say("[%7.2fs] %d stream aborts without loss reported while the replicas stopped "
             "(report.json: events)",
             cl_now_ms() / 1e3, cl.stop_aborts);
  if (cl.t0_set) lines_tick(&cl.tick_timer); /* the last stats lines */
  proxies_close();
  uv_close((uv_handle_t *)&cl.start_timer, NULL);
  uv_close((uv_handle_t *)&cl.tick_timer, NULL);
  uv_close((uv_handle_t *)&cl.plan_timer, NULL);
  uv_close((uv_handle_t *)&cl.end_timer, NULL);
  uv_close((uv_handle_t *)&cl.stop_timer, NULL);
  uv_close((uv_handle_t *)&cl.members_timer, NULL);
  uv_close((uv_handle_t *)&cl.sigint, NULL);
  uv_close((uv_handle_t *)&cl.sigterm, NULL);
  for (unsigned i = 0; i < cl.nslots; i++)
    uv_close((uv_handle_t *)&cl.rep[i].retry, NULL);
}

/* ------------------------------------------- what the replicas tell us */

static void on_loaded(cl_inc_t *inc, uint64_t members) {
  cl_replica_t *r = inc->r;
  if (cl.phase == PH_STARTING) {
    maybe_time_zero();
    return;
  }
  cl_event("replica", -1, "up", "%s is up (incarnation %d, %" PRIu64 " members)", r->name, inc->id,
           members);
  members_settled(r->idx);
}

static void on_exited(cl_inc_t *inc) {
  cl_replica_t *r = inc->r;
  int64_t status = inc->exit_status;
  int sig = inc->term_signal;
  if (cl.phase == PH_STARTING) {
    char why[CL_PATH + 128];
    snprintf(why, sizeof why, "%s exited during startup (status %" PRId64 ", signal %d); see %s",
             r->name, status, sig, r->log_path);
    run_abort(why);
    return;
  }
  cl_event("replica", -1, "exit", "%s exited unexpectedly (status %" PRId64 ", signal %d); see %s",
           r->name, status, sig, r->log_path);
  if (!inc->listening && inc->id > 1 && r->retries < CL_RETRY_MAX && cl.phase == PH_RUNNING) {
    r->retries++; /* most likely its port was taken while it was down */
    procs_restart_later(r, CL_RETRY_MS);
  }
  members_settled(r->idx);
}

void run_init(void) {
  cl.hooks = (cl_hooks_t){.loaded = on_loaded, .exited = on_exited, .gone = maybe_finish};
  uv_timer_init(&cl.loop, &cl.start_timer);
  uv_timer_init(&cl.loop, &cl.tick_timer);
  uv_timer_init(&cl.loop, &cl.plan_timer);
  uv_timer_init(&cl.loop, &cl.end_timer);
  uv_timer_init(&cl.loop, &cl.stop_timer);
  uv_timer_init(&cl.loop, &cl.members_timer);
  for (unsigned i = 0; i < cl.nslots; i++) {
    uv_timer_init(&cl.loop, &cl.rep[i].retry);
    cl.rep[i].retry.data = &cl.rep[i];
  }
  uv_signal_init(&cl.loop, &cl.sigint);
  uv_signal_init(&cl.loop, &cl.sigterm);
  uv_signal_start(&cl.sigint, on_signal, SIGINT);
  uv_signal_start(&cl.sigterm, on_signal, SIGTERM);
}

/* Ports, proxies, membership files, then the initial replicas. */
int run_start(void) {
  int rc = proxies_setup();
  if (rc) return rc;
  if (cl.o.direct)
    text_say("links: direct, through a proxy only where a fault acts (%zu proxies)", cl.npx_made);
  for (unsigned i = 0; i < cl.ninit; i++)
    cl.member[i] = true;
  for (unsigned i = 0; i < cl.ninit && rc == 0; i++)
    rc = members_write(&cl.rep[i], cl.member);
  for (unsigned i = 0; i < cl.ninit && rc == 0; i++)
    rc = procs_spawn(&cl.rep[i]);
  if (rc) return rc;
  uv_timer_start(&cl.start_timer, on_start_timeout, start_timeout_ms(), 0);
  return 0;
}
