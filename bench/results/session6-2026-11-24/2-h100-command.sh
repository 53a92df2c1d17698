S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name --format=csv,noheader
$S/test_gpu "[grad_overlap],[nccl],[logprob_head]" 2>&1 | tail -25 > $OUT/tests.txt; tail -4 $OUT/tests.txt
$S/bench_gpu_dp_step --precision bf16 2>&1 | tee $OUT/dp1.txt
( time $S/crucible run configs/h100_qwen_tying.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/tying ) > $OUT/tying.txt 2>&1
grep -v "step/s  ETA" $OUT/tying.txt | grep -v "^ *$" | tail -25
python3 -c "
import json; d=json.load(open('/tmp/tying/report.json'))['stages']
for n,s in d.items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) else v) for k,v in s.items() if k in ('after','teacher_eval','seconds','traces_kept')})
" | tee $OUT/tying_summary.txt
grep -h '"stage":"distill_qwen' /tmp/tying/metrics.jsonl | awk 'NR%50==0' | cut -c1-200 > $OUT/tying_metrics.txt
