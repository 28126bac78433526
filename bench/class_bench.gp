# Vote latency CDFs from class_bench --cdf DIR: idle and under blocks, the
# single FIFO (bftnet without classes) beside traffic classes, one panel per
# cell; with nocap=1 also the classes without the in-flight cap (a run with
# --modes fifo,nocap,classes). Usage:
#   gnuplot -e "dir='DIR'; out='docs/img/classes-vote-cdf.png'" bench/class_bench.gp
#   gnuplot -e "dir='DIR'; out='OUT.png'; nocap=1; net='behind 200 Mbit/s links'" bench/class_bench.gp
if (!exists("dir")) dir = "/tmp/class-cdf"
if (!exists("out")) out = "docs/img/classes-vote-cdf.png"
if (!exists("nocap")) nocap = 0
if (!exists("net")) net = "loopback"
set terminal pngcairo size 1400,1000 font ",11"
set output out
set multiplot layout 2,2 title "Vote latency (64 B every 10 ms), CDF: idle and under blocks, single FIFO vs traffic classes (".net.")"
set logscale x
set xrange [0.05:3000]
set yrange [0:1]
set xlabel "latency (ms, log scale)"
set ylabel "fraction of votes"
set grid
set key bottom right
cells = "pair-1m pair-64k all4-1m all4-64k"
titles = "'pair, 1 MiB blocks' 'pair, 64 KiB blocks' 'four nodes all-to-all, 1 MiB blocks' 'four nodes all-to-all, 64 KiB blocks'"
do for [i = 1:4] {
  c = word(cells, i)
  set title word(titles, i)
  plot dir."/".c."-fifo-idle.dat" using 1:2 with lines lw 2 dt 2 lc rgb "#999999" title "FIFO, idle", \
       dir."/".c."-fifo-bulk.dat" using 1:2 with lines lw 2 lc rgb "#d62728" title "FIFO, under blocks", \
       dir."/".c."-classes-idle.dat" using 1:2 with lines lw 2 dt 2 lc rgb "#1f77b4" title "classes, idle", \
       dir."/".c."-classes-bulk.dat" using 1:2 with lines lw 2 lc rgb "#2ca02c" title "classes, under blocks", \
       (nocap ? dir."/".c."-nocap-bulk.dat" : "/dev/null") using 1:2 with lines lw 2 lc rgb "#ff7f0e" \
         title (nocap ? "classes without the in-flight cap, under blocks" : "")
}
unset multiplot
