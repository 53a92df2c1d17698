# nvidia-h100-x1: the RS-wgmma MLA decode kernel; then configs/h100.toml end to end (generation now on a BF16 latent cache)
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[decode]" -s 2>&1 | grep -E "kv decode|passed|failed|FAILED" | tail -4 | tee $OUT/tests.txt
$S/bench_gpu_decode_attention 2>&1 | grep mla | tee $OUT/decode.txt
grep -q "All tests passed" $OUT/tests.txt && { /usr/bin/time -f "wall %E" $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/h100 > $OUT/h100.txt 2>&1; tail -3 $OUT/h100.txt; python3 -c "
import json; r=json.load(open('/tmp/h100/report.json'))['stages']
print(' '.join(f\"{k} {v['before']['accuracy']:.3f}->{v['after']['accuracy']:.3f}\" if 'before' in v and 'after' in v else (f\"{k} {v['after']['accuracy']:.3f}\" if 'after' in v else k) for k,v in r.items()))"; }
