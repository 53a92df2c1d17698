# call 7: configs/h100.toml end to end with this session's grouped kernels; then [decode]
# tests and the generate benchmark (with its transformers peer) as time allows
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/h100 ) > $OUT/h100.txt 2>&1
grep -v "step/s  ETA" $OUT/h100.txt | grep -v "^ *$" | tail -14
python3 -c "
import json; d=json.load(open('/tmp/h100/report.json'))['stages']
for n,s in d.items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) and 'accuracy' in v else v) for k,v in s.items() if k in ('before','after','teacher_eval','seconds','accepted')})
" | tee $OUT/h100_summary.txt
ls -la /tmp/h100/export/*/ | head -30 > $OUT/export_ls.txt
timeout 90 $S/test_gpu "[decode]" > $OUT/decode_tests.txt 2>&1; echo "decode tests rc $?"; tail -2 $OUT/decode_tests.txt
timeout 100 $S/bench_gpu_generate --hf-config $OUT/hf_gen > $OUT/gen.txt 2>&1; grep "^gen" $OUT/gen.txt
[ -f $OUT/hf_gen/config.json ] && timeout 60 python3 tools/bench_hf_generate.py $OUT/hf_gen 2>&1 | tail -1 | tee $OUT/hf_gen.txt
rm -rf $OUT/hf_gen
