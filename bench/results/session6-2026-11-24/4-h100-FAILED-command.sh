S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name --format=csv,noheader
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step > $OUT/step.txt 2>&1
grep "^step\|moe\.\(fwd\|bwd\)\.experts\|^bwd.total\|^fwd.body" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee $OUT/hf_step.txt
rm -rf $OUT/hf_step
( time $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/h100 ) > $OUT/h100.txt 2>&1 &
( time $S/test_gpu "[weight_cache],[gemm],[grouped_linear],[model]" ) > $OUT/tests.txt 2>&1
tail -5 $OUT/tests.txt
wait
grep -v "step/s  ETA" $OUT/h100.txt | grep -v "^ *$" | tail -12
python3 -c "
import json; d=json.load(open('/tmp/h100/report.json'))['stages']
for n,s in d.items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) and 'accuracy' in v else v) for k,v in s.items() if k in ('before','after','teacher_eval','seconds','accepted')})
" | tee $OUT/h100_summary.txt
ls -la /tmp/h100/export/*/ | head -30 > $OUT/export_ls.txt
