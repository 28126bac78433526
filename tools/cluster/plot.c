/* plot.c — DIR/plot.png: throughput and p99 per replica over time, the
 * fault events marked, drawn by gnuplot when it is installed. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"

extern char **environ;

static void plot_label(FILE *f, double t, const char *text, bool arrow) {
  if (arrow)
    fprintf(f, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb '#c0392b' lw 1\n", t,
            t);
  fprintf(f,
          "set label \"%s\" at %.3f, graph 0.98 rotate by 90 right front tc rgb '#c0392b' "
          "font ',8'\n",
          text, t);
}

/* Vertical lines (and labels, thinned) at fault events; shaded spans for
 * blackholes, partitions, latency, kills (until restart) and failovers. */
static void plot_markers(FILE *f, double xmax) {
  double last_label = -1e9, gap = xmax / 50.0;
  size_t i;
  json_t *e;
  for (size_t k = 0; k < cl.nspans; k++) {
    double off = cl.spans[k].off < 0 ? (cl.stop_ms > 0 ? cl.stop_ms : xmax * 1e3) : cl.spans[k].off;
    bool lat = cl.faults[cl.spans[k].fault].kind == FAULT_LATENCY;
    fprintf(f,
            "set object rect from %.3f, graph 0 to %.3f, graph %s fc rgb '%s' "
            "fs solid 0.25 noborder behind\n",
            cl.spans[k].on / 1e3, off / 1e3, lat ? "0.03" : "1", lat ? "#2e86c1" : "#f5b7b1");
  }
  json_array_foreach(cl.events, i, e) {
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *action = json_string_value(json_object_get(e, "action"));
    double t = cl_jd(e, "t_ms") / 1e3;
    bool fault = strcmp(kind, "fault") == 0, stop = strcmp(action, "stop") == 0;
    if (!fault && !stop) continue;
    char text[96];
    if (fault)
      snprintf(text, sizeof text, "%s %s", action, json_string_value(json_object_get(e, "target")));
    else
      snprintf(text, sizeof text, "stop");
    bool label = t - last_label >= gap;
    if (label) last_label = t;
    fprintf(f, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb '#c0392b' lw 1\n", t,
            t);
    if (label) plot_label(f, t, text, false);
  }
}

/* plot.dat: one gnuplot data block per replica (t, msgs/s, p50, p99; a
 * blank line between incarnations). Returns the replicas plotted. */
static int plot_data(const char *path, char *names, size_t nlen, double *xmax) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int k = 0;
  text_buf_t nb;
  text_buf_init(&nb, names, nlen);
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (r->nseries == 0) continue;
    fprintf(f, "# %s\n", r->name);
    for (size_t p = 0; p < r->nseries; p++) {
      const cl_point_t *pt = &r->series[p];
      if (p && pt->inc != r->series[p - 1].inc) fputc('\n', f);
      char a50[32] = "NaN", a99[32] = "NaN"; /* NaN: no sample, the line breaks */
      if (!isnan(pt->p50)) snprintf(a50, sizeof a50, "%.1f", pt->p50);
      if (!isnan(pt->p99)) snprintf(a99, sizeof a99, "%.1f", pt->p99);
      fprintf(f, "%.3f %.1f %s %s\n", pt->t, pt->rate, a50, a99);
      if (pt->t > *xmax) *xmax = pt->t;
    }
    fputs("\n\n", f);
    text_sep(&nb, " ");
    text_addf(&nb, "%s", r->name);
    k++;
  }
  fclose(f);
  return k;
}

/* --classes: the third panel, each class's cluster-wide p99 per tick. */
static void plot_classes(FILE *f, const char *cdat) {
  fprintf(f, "unset label\nset ylabel 'p99 per class (ms, log)'\n");
  fprintf(f, "cnames = \"");
  for (size_t k = 0; k < cl.o.mix.n; k++)
    fprintf(f, "%s%s", k ? " " : "", cl.o.mix.c[k].name);
  fprintf(f, "\"\n");
  fprintf(f,
          "plot for [i=0:%zu] '%s' index i using 1:($4/1000.0) with lines lw 2 "
          "title word(cnames, i+1).' p99 (cluster-wide)'\n",
          cl.o.mix.n - 1, cdat);
}

static int plot_script(const char *gp, const char *dat, const char *png, const char *names, int k,
                       double xmax, bool cairo) {
  FILE *f = fopen(gp, "w");
  if (!f) return -1;
  int h = cl.o.mix.n ? 1200 : 860; /* --classes: a third panel */
  if (cairo)
    fprintf(f, "set terminal pngcairo size 1280,%d noenhanced font 'sans,10'\n", h);
  else
    fprintf(f, "set terminal png size 1280,%d noenhanced\n", h);
  fprintf(f, "set output '%s'\n", png);
  char spec[FAULT_SPEC_LEN_MAX + 1];
  size_t o = 0;
  for (const char *c = cl.o.faults; *c && o + 1 < sizeof spec; c++)
    spec[o++] = (*c == '"' || *c == '\\' || *c == '\n') ? ' ' : *c;
  spec[o] = '\0';
  if (cl.o.mix.n) {
    char mix[512];
    classmix_describe(&cl.o.mix, mix, sizeof mix);
    fprintf(f,
            "set multiplot layout 3,1 title \"bftnet-cluster: %u replicas; per peer: %s\\n"
            "faults: %s\"\n",
            cl.ninit, mix, o ? spec : "none");
  } else {
    fprintf(f,
            "set multiplot layout 2,1 title \"bftnet-cluster: %u replicas, %.15g msgs/s per "
            "peer, %u B\\nfaults: %s\"\n",
            cl.ninit, cl.o.rate, cl.o.size, o ? spec : "none");
  }
  /* Fixed margins: both panels share the x axis, so fault lines line up. */
  fprintf(f, "set grid\nset key outside right top\nset xrange [0:%.3f]\n", xmax);
  fprintf(f, "set lmargin 10\nset rmargin 12\nset format y '%%g'\n");
  fprintf(f, "names = \"%s\"\n", names);
  plot_markers(f, xmax);
  fprintf(f, "set ylabel 'delivered msgs/s'\nset yrange [0:*]\n");
  fprintf(f, "plot for [i=0:%d] '%s' index i using 1:2 with lines lw 1.5 title word(names, i+1)\n",
          k - 1, dat);
  fprintf(f, "unset label\nset ylabel 'p99 latency (ms, log)'\nset logscale y\nset yrange [*:*]\n");
  fprintf(f, "set xlabel 'seconds since time zero (red lines: fault events; red shading: "
             "blackhole, partition, kill to restart, failover; blue strip: added latency)'\n");
  fprintf(f,
          "plot for [i=0:%d] '%s' index i using 1:($4/1000.0) with lines lw 1.5 "
          "title word(names, i+1)\n",
          k - 1, dat);
  if (cl.o.mix.n) {
    char cdat[CL_PATH];
    cl_path_fmt(cdat, sizeof cdat, "%s/plotc.dat", cl.out);
    if (classes_plot_data(cdat) == 0) plot_classes(f, cdat);
  }
  fprintf(f, "unset multiplot\n");
  fclose(f);
  return 0;
}

/* Runs gnuplot SCRIPT with stdout/stderr into LOG. Returns its exit status,
 * or -errno when it cannot be started (-ENOENT: not installed). */
static int gnuplot_run(const char *script, const char *logp) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char *argv[] = {"gnuplot", (char *)script, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -rc;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -errno;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Returns the PNG path on success, else NULL (and says why). */
const char *plot_make(char *png, size_t len) {
  char gp[CL_PATH], dat[CL_PATH], logp[CL_PATH], names[512];
  double xmax = cl.stop_ms > 0 ? cl.stop_ms / 1e3 : cl.o.duration_s;
  cl_path_fmt(gp, sizeof gp, "%s/plot.gp", cl.out);
  cl_path_fmt(dat, sizeof dat, "%s/plot.dat", cl.out);
  cl_path_fmt(logp, sizeof logp, "%s/plot.log", cl.out);
  cl_path_fmt(png, len, "%s/plot.png", cl.out);
  int k = plot_data(dat, names, sizeof names, &xmax);
  if (k <= 0) return text_say("plot: no stats lines to plot"), NULL;
  int rc = -1;
  for (int cairo = 1; cairo >= 0 && rc != 0; cairo--) {
    if (plot_script(gp, dat, png, names, k, xmax, cairo) != 0) break;
    rc = gnuplot_run(gp, logp);
    if (rc == -ENOENT) {
      text_say("plot: gnuplot is not installed (Debian: gnuplot-nox): no PNG; the data is in %s",
               dat);
      return NULL;
    }
  }
  if (rc != 0) return text_say("plot: gnuplot failed (see %s): no PNG", logp), NULL;
  return png;
}
