# call 9: the demo pipeline on the GPU with this session's grouped kernels
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/crucible run configs/demo.toml --set run.device=cuda --set run.out_dir=/tmp/demo ) > $OUT/demo.txt 2>&1; echo "demo rc $?"
grep -v "step/s  ETA" $OUT/demo.txt | grep -v "^ *$" | tail -12
python3 -c "
import json; d=json.load(open('/tmp/demo/report.json'))
print({k: v for k, v in d.items() if k != 'stages'})
for n,s in d['stages'].items(): print(n, {k:(v.get('accuracy') if isinstance(v,dict) and 'accuracy' in v else v) for k,v in s.items() if k in ('before','after','teacher_eval','seconds','accepted','passed')})
" | tee $OUT/demo_summary.txt
