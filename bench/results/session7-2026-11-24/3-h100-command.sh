# call 3: where one FP8 / BF16 training step of the h100 teacher spends GPU and host time (nsys)
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: $NSYS"
[ -n "$NSYS" ] || exit 0
for prec in fp8 bf16; do
  $NSYS profile -t cuda -o $OUT/step_$prec --force-overwrite true $S/bench_gpu_model_step --precision $prec > $OUT/run_$prec.txt 2>&1
  $NSYS stats -q --report cuda_gpu_kern_sum --format csv $OUT/step_$prec.nsys-rep > $OUT/kern_$prec.csv 2>&1
  $NSYS stats -q --report cuda_api_sum --format csv $OUT/step_$prec.nsys-rep > $OUT/api_$prec.csv 2>&1
  rm -f $OUT/step_$prec.nsys-rep $OUT/step_$prec.sqlite
  echo "== $prec"; grep "^step" $OUT/run_$prec.txt; head -15 $OUT/kern_$prec.csv | cut -c1-220; head -12 $OUT/api_$prec.csv | cut -c1-160
done
