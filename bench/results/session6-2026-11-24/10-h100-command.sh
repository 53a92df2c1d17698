S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
$S/bench_gpu_generate --hf-config $OUT/hf_gen > $OUT/gen.txt 2>&1; grep "^generate" $OUT/gen.txt
python3 tools/bench_hf_generate.py $OUT/hf_gen 2>&1 | tail -1 | tee $OUT/hf_gen.txt
rm -rf $OUT/hf_gen
( time $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/g --set 'run.stages=["sft","grpo"]' --set stages.grpo.optimizer.lr=6e-5 ) > $OUT/grpo.txt 2>&1
grep -v "step/s  ETA" $OUT/grpo.txt | grep -v "^ *$" | tail -6
python3 -c "
import json; d=json.load(open('/tmp/g/report.json'))['stages']
for n,s in d.items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) and 'accuracy' in v else v) for k,v in s.items() if k in ('before','after','seconds')})
" | tee $OUT/grpo_summary.txt
grep '"stage":"grpo"' /tmp/g/metrics.jsonl > $OUT/grpo_metrics.jsonl
