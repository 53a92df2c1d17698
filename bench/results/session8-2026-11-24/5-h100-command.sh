# call 5: configs/h100.toml end to end, then the demo on the GPU, at the linear pair commit
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time timeout 480 $S/crucible run configs/h100.toml --set task.tokenizer=$S/deepseek_v3 --set run.out_dir=/tmp/h100 ) > $OUT/h100.txt 2>&1
grep -v "step/s  ETA" $OUT/h100.txt | grep -v "^ *$" | tail -14
python3 -c "
import json; d=json.load(open('/tmp/h100/report.json'))['stages']
for n,s in d.items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) and 'accuracy' in v else v) for k,v in s.items() if k in ('before','after','teacher_eval','seconds','accepted')})
" | tee $OUT/h100_summary.txt
ls -la /tmp/h100/export/*/ | head -30 > $OUT/export_ls.txt
( time timeout 110 $S/crucible run configs/demo.toml --set run.device=cuda --set run.out_dir=/tmp/demo ) > $OUT/demo.txt 2>&1; echo "demo rc $?"
grep -v "step/s  ETA" $OUT/demo.txt | grep -v "^ *$" | tail -8
