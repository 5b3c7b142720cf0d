# plot.gp - the plot of tools/bench.sh: throughput against message size
# (16 connections x 32 in flight) and latency against clients (window 1,
# 64 B), asyncchatd next to its ceilings. Run in the results directory:
# reads throughput.dat and latency.dat, writes bench.png.
set terminal pngcairo size 1400,560 font ",10"
set output "bench.png"
set datafile missing "NaN"
set multiplot layout 1,2 title "asyncchat benchmark (loopback, one run; see table.md)"

set title "Echo throughput, 16 connections x 32 in flight"
set xlabel "content bytes per message"
set ylabel "content MB/s"
set logscale x 2
set logscale y 10
set key top left
set grid
plot "throughput.dat" using 1:2 with linespoints lw 2 title "asyncchatd (echo plugin)", \
     "" using 1:3 with linespoints title "frame-boundary echo (protocol ceiling)", \
     "" using 1:4 with linespoints title "raw echo, plain event + 256 KiB buffer", \
     "" using 1:5 with linespoints title "raw echo, bufferevent"

set title "Round-trip latency, window 1, 64 B"
set xlabel "connections"
set ylabel "microseconds"
set logscale x 2
set logscale y 10
set key top left
plot "latency.dat" using 1:6 with linespoints lw 2 title "asyncchatd p99", \
     "" using 1:2 with linespoints lw 2 dt 2 title "asyncchatd p50", \
     "" using 1:7 with linespoints title "frame-boundary echo p99", \
     "" using 1:8 with linespoints title "raw echo (event) p99", \
     "" using 1:9 with linespoints title "raw echo (bufferevent) p99"
unset multiplot
