# plot.gp - training curves from the CSV log of a program made by
# `nnc MODEL.nn --emit=main` (./train train ... --log log.csv):
# loss and accuracy per epoch, training and validation.
#
#   gnuplot -e "log='log.csv'; out='curve.svg'" examples/plot.gp
#
# log defaults to log.csv, out to curve.svg (.png also works: the
# terminal follows the extension). A regression log (empty accuracy
# columns) gives the loss panel alone.
if (!exists("log")) log = 'log.csv'
if (!exists("out")) out = 'curve.svg'
set datafile separator ","
set datafile missing ""

# does the log have accuracy values? (column 3)
# (stats warns and sets nothing when a column is empty)
stats log using 1 nooutput
if (STATS_max <= 20) set xtics 1
undefine STATS_*
stats log using 3 nooutput
has_acc = exists("STATS_records") ? STATS_records > 0 : 0
undefine STATS_*
stats log using 4 nooutput
has_val = exists("STATS_records") ? STATS_records > 0 : 0

w = has_acc ? 900 : 480
if (out[strlen(out)-3:] eq "png") {
    set terminal pngcairo size w, 340 font "Helvetica,10"
} else {
    set terminal svg size w, 340 font "Helvetica,11" background "white"
}
set output out
set key top right
set grid lc rgb "#dddddd"
set xlabel "epoch"
set style line 1 lc rgb "#2f6db5" lw 2 pt 7 ps 1
set style line 2 lc rgb "#d9822b" lw 2 pt 5 ps 1
if (has_acc) set multiplot layout 1, 2

set title "loss"
if (has_val) {
    plot log using 1:2 with linespoints ls 1 title "training", \
         log using 1:4 with linespoints ls 2 title "validation"
} else {
    plot log using 1:2 with linespoints ls 1 title "training"
}
if (has_acc) {
    set title "accuracy"
    set key bottom right
    if (has_val) {
        plot log using 1:3 with linespoints ls 1 title "training", \
             log using 1:5 with linespoints ls 2 title "validation"
    } else {
        plot log using 1:3 with linespoints ls 1 title "training"
    }
    unset multiplot
}
